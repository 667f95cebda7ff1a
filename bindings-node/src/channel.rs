//! `channel`: channel definitions between JavaScript and the core.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::channel::{Channel, ChannelKind, Compression, Concurrency, IndexRef, NewChannel};
use telemetron::client::ChannelRef;

use crate::error::invalid;
use crate::telem::data_type;

/// A channel definition.
#[napi(object)]
#[derive(Clone)]
pub struct ChannelJs {
    /// Unique key.
    pub key: u32,
    /// Unique name.
    pub name: String,
    /// Sample type (`"timestamp"` for index channels).
    pub data_type: String,
    /// True for an index channel.
    pub is_index: bool,
    /// True for a virtual (live-only) channel.
    pub is_virtual: bool,
    /// The index channel's key (its own key for an index; absent for virtual channels).
    pub index: Option<u32>,
    /// `"exclusive"` or `"shared"`.
    pub concurrency: String,
    /// Managed by the engine.
    pub internal: bool,
    /// How compaction stores the samples: `"default"` (the engine's setting), `"off"`,
    /// `"pcodec"`, `"zstd"` or `"lz4"`.
    pub compression: String,
}

impl ChannelJs {
    pub(crate) fn from_core(c: &Channel) -> ChannelJs {
        ChannelJs {
            key: c.key,
            name: c.name.clone(),
            data_type: c.data_type.name().to_string(),
            is_index: matches!(c.kind, ChannelKind::Index),
            is_virtual: matches!(c.kind, ChannelKind::Virtual),
            index: c.index_key(),
            concurrency: c.concurrency.as_str().to_string(),
            internal: c.internal,
            compression: c.compression.as_str().to_string(),
        }
    }
}

/// A channel to create.
#[napi(object)]
pub struct NewChannelJs {
    /// Unique name.
    pub name: String,
    /// Sample type name; defaults to `"timestamp"` for an index.
    pub data_type: Option<String>,
    /// Create an index channel.
    pub is_index: Option<bool>,
    /// The index of a data channel: a key, or the name of an existing channel or of an
    /// index created in the same call.
    #[napi(ts_type = "number | string")]
    pub index: Option<Either<u32, String>>,
    /// Create a virtual (live-only) channel.
    #[napi(js_name = "virtual")]
    pub is_virtual: Option<bool>,
    /// `"exclusive"` (default) or `"shared"`.
    pub concurrency: Option<String>,
    /// How compaction stores the samples: `"default"` (the engine's setting; the default),
    /// `"off"`, `"pcodec"`, `"zstd"` or `"lz4"`. Only stored data channels of fixed-size
    /// types take a codec.
    pub compression: Option<String>,
}

impl NewChannelJs {
    pub(crate) fn to_core(&self) -> Result<NewChannel> {
        let is_index = self.is_index.unwrap_or(false);
        let dt = match (&self.data_type, is_index) {
            (Some(t), _) => data_type(t)?,
            (None, true) => telemetron::telem::DataType::Timestamp,
            (None, false) => return Err(invalid(format!("channel {:?} needs a dataType (e.g. \"f64\")", self.name))),
        };
        let concurrency: Option<Concurrency> = self.concurrency.as_deref().map(str::parse).transpose().map_err(invalid)?;
        let compression: Option<Compression> = self.compression.as_deref().map(str::parse).transpose().map_err(invalid)?;
        let mut nc = if is_index {
            NewChannel::index(self.name.clone())
        } else if self.is_virtual.unwrap_or(false) {
            NewChannel::virtual_(self.name.clone(), dt)
        } else {
            NewChannel::data(self.name.clone(), dt, "")
        };
        nc.data_type = dt;
        nc.is_virtual = self.is_virtual.unwrap_or(false);
        nc.index = match &self.index {
            None => None,
            Some(Either::A(k)) => Some(IndexRef::Key(*k)),
            Some(Either::B(n)) => Some(IndexRef::Name(n.clone())),
        };
        if let Some(c) = concurrency {
            nc.concurrency = c;
        }
        if let Some(c) = compression {
            nc.compression = c;
        }
        Ok(nc)
    }
}

/// A channel reference from JS: a key or a name.
pub(crate) fn channel_ref(r: &Either<u32, String>) -> ChannelRef {
    match r {
        Either::A(k) => ChannelRef::Key(*k),
        Either::B(n) => ChannelRef::Name(n.clone()),
    }
}

/// Channel references from JS.
pub(crate) fn channel_refs(rs: &[Either<u32, String>]) -> Vec<ChannelRef> {
    rs.iter().map(channel_ref).collect()
}
