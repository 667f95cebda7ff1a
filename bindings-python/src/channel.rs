//! Channels: the `Channel` class, channel references and the name/key lookups used by
//! frames and writers.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use telemetron::channel::{Channel, ChannelKey, ChannelKind, Compression, Concurrency, IndexRef, NewChannel};
use telemetron::client::ChannelRef;
use telemetron::telem::DataType;

use crate::error::invalid;

/// A channel definition (read-only). Retrieve channels with `client.channels.retrieve`.
#[pyclass(frozen, module = "telemetron._native", name = "Channel")]
#[derive(Clone, Debug)]
pub struct PyChannel {
    pub inner: Channel,
}

#[pymethods]
impl PyChannel {
    /// Unique key (never reused).
    #[getter]
    fn key(&self) -> ChannelKey {
        self.inner.key
    }

    /// Unique name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sample type name (`"f64"`, `"timestamp"`, ...).
    #[getter]
    fn data_type(&self) -> &'static str {
        self.inner.data_type.name()
    }

    /// True for an index (timestamp) channel.
    #[getter]
    fn is_index(&self) -> bool {
        self.inner.is_index()
    }

    /// True for a virtual (streamed, never stored) channel.
    #[getter]
    fn is_virtual(&self) -> bool {
        self.inner.is_virtual()
    }

    /// Key of the index channel giving this channel time (itself for an index channel,
    /// `None` for a virtual channel).
    #[getter]
    fn index(&self) -> Option<ChannelKey> {
        self.inner.index_key()
    }

    /// `"exclusive"` or `"shared"`: how writers of equal authority share the channel.
    #[getter]
    fn concurrency(&self) -> &'static str {
        self.inner.concurrency.as_str()
    }

    /// How compaction stores the samples: `"default"` (the engine's setting), `"off"`,
    /// `"pcodec"`, `"zstd"` or `"lz4"`.
    #[getter]
    fn compression(&self) -> &'static str {
        self.inner.compression.as_str()
    }

    /// True for engine-managed channels (such as the control-state channel).
    #[getter]
    fn internal(&self) -> bool {
        self.inner.internal
    }

    fn __repr__(&self) -> String {
        let kind = match self.inner.kind {
            ChannelKind::Index => "index".to_string(),
            ChannelKind::Data { index } => format!("data, index={index}"),
            ChannelKind::Virtual => "virtual".to_string(),
        };
        format!("Channel(key={}, name={:?}, data_type={:?}, {kind})", self.inner.key, self.inner.name, self.inner.data_type.name())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyChannel>().is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        u64::from(self.inner.key)
    }
}

/// Channels known to a frame, writer or streamer, by key and by name.
#[derive(Debug, Default)]
pub struct ChanMap {
    pub by_key: HashMap<ChannelKey, Channel>,
    pub by_name: HashMap<String, ChannelKey>,
}

impl ChanMap {
    pub fn new(chans: impl IntoIterator<Item = Channel>) -> Arc<ChanMap> {
        let mut m = ChanMap::default();
        for c in chans {
            m.by_name.insert(c.name.clone(), c.key);
            m.by_key.insert(c.key, c);
        }
        Arc::new(m)
    }

    /// The channel a Python key (`int`, `str` or `Channel`) names, if known here.
    pub fn lookup(&self, obj: &Bound<'_, PyAny>) -> PyResult<Option<&Channel>> {
        if let Ok(s) = obj.cast::<PyString>() {
            let name = s.to_cow()?;
            return Ok(self.by_name.get(name.as_ref()).and_then(|k| self.by_key.get(k)));
        }
        if let Ok(c) = obj.cast::<PyChannel>() {
            return Ok(self.by_key.get(&c.get().inner.key));
        }
        match obj.extract::<ChannelKey>() {
            Ok(k) => Ok(self.by_key.get(&k)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "a channel is named by its name (str), its key (int) or a Channel, not {}",
                obj.get_type().name()?
            ))),
        }
    }
}

/// One channel reference from Python: `int` key, `str` name or `Channel`.
pub fn channel_ref(obj: &Bound<'_, PyAny>) -> PyResult<ChannelRef> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(ChannelRef::Name(s.to_cow()?.into_owned()));
    }
    if let Ok(c) = obj.cast::<PyChannel>() {
        return Ok(ChannelRef::Key(c.get().inner.key));
    }
    match obj.extract::<ChannelKey>() {
        Ok(k) => Ok(ChannelRef::Key(k)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "a channel is named by its name (str), its key (int) or a Channel, not {}",
            obj.get_type().name()?
        ))),
    }
}

/// One reference or a list/tuple of them.
pub fn channel_refs(obj: &Bound<'_, PyAny>) -> PyResult<Vec<ChannelRef>> {
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        return obj.try_iter()?.map(|o| channel_ref(&o?)).collect();
    }
    if obj.cast::<PyString>().is_err() && obj.cast::<PyChannel>().is_err() && obj.extract::<ChannelKey>().is_err() {
        // Any other iterable (a set, a generator, pandas columns).
        if let Ok(it) = obj.try_iter() {
            return it.map(|o| channel_ref(&o?)).collect();
        }
    }
    Ok(vec![channel_ref(obj)?])
}

/// Parse a data type from its name (`"f64"`, `"float64"`, `"timestamp"`, ...).
pub fn parse_data_type(name: &str) -> PyResult<DataType> {
    name.parse::<DataType>().map_err(|e| invalid(e.to_string()))
}

/// A `NewChannel` from the dict the Python layer builds.
pub fn new_channel(d: &Bound<'_, PyDict>) -> PyResult<NewChannel> {
    let get = |k: &str| d.get_item(k);
    let name: String = get("name")?.ok_or_else(|| invalid("a new channel needs a name"))?.extract()?;
    let is_index: bool = get("is_index")?.map(|v| v.extract()).transpose()?.unwrap_or(false);
    let is_virtual: bool = get("virtual")?.map(|v| v.extract()).transpose()?.unwrap_or(false);
    let data_type = match get("data_type")? {
        Some(v) if !v.is_none() => parse_data_type(&v.extract::<String>()?)?,
        _ if is_index => DataType::Timestamp,
        _ => return Err(invalid(format!("channel {name:?} needs a data_type (e.g. \"f64\")"))),
    };
    let index = match get("index")? {
        Some(v) if !v.is_none() => Some(match channel_ref(&v)? {
            ChannelRef::Key(k) => IndexRef::Key(k),
            ChannelRef::Name(n) => IndexRef::Name(n),
        }),
        _ => None,
    };
    let concurrency: Concurrency = match get("concurrency")? {
        Some(v) if !v.is_none() => v.extract::<String>()?.parse().map_err(invalid)?,
        _ => Concurrency::default(),
    };
    let compression: Compression = match get("compression")? {
        Some(v) if !v.is_none() => v.extract::<String>()?.parse().map_err(invalid)?,
        _ => Compression::default(),
    };
    Ok(NewChannel { name, data_type, is_index, index, is_virtual, concurrency, internal: false, compression })
}
