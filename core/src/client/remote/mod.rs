//! The remote backend: unary calls over HTTP, writers, streamers and iterators over
//! WebSocket streams to a `telemetron serve` node. See `docs/protocol.md`.

mod http;
mod iterator;
mod relayed;
mod streamer;
mod transport;
mod validate;
mod writer;
mod ws;

pub use relayed::{RelayedMessage, RelayedStream};

use std::collections::BTreeMap;

use bytes::Bytes;
use uuid::Uuid;

use super::{ChannelRef, ConnectOptions, Credentials};
use crate::channel::{Channel, ChannelKey, Compression, NewChannel};
use crate::control::{CONTROL_CHANNEL, State};
use crate::error::Result;
use crate::protocol::messages::*;
use crate::protocol::{FRAME_CONTENT_TYPE, NetError, PROTOCOL_VERSION, codec};
use crate::ranger::{NewRange, Range, RangeQuery};
use crate::telem::{Frame, Reduction, TimeRange, TimeStamp};

pub(crate) use iterator::RemoteIterator;
pub(crate) use streamer::RemoteStreamer;
pub(crate) use transport::Endpoint;
pub(crate) use writer::RemoteWriter;

/// A connection to a remote node.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) http: http::Http,
    control_key: parking_lot::Mutex<Option<ChannelKey>>,
    /// The change channel's key, looked up once.
    changes_key: parking_lot::Mutex<Option<ChannelKey>>,
}

impl Remote {
    /// Check the node's protocol version, authenticate, and return the connection.
    pub(crate) async fn connect(url: &str, opts: &ConnectOptions) -> Result<Remote> {
        let endpoint = transport::Endpoint::parse(url, opts)?;
        let http = http::Http::new(endpoint);
        let v: VersionInfo = http.get("version").await?;
        if v.protocol != PROTOCOL_VERSION {
            return Err(NetError::VersionMismatch { node: v.protocol, client: PROTOCOL_VERSION }.into());
        }
        http.max_message.store(v.max_message_bytes, std::sync::atomic::Ordering::Relaxed);
        match &opts.credentials {
            Credentials::None if v.auth_required => return Err(NetError::AuthRequired.into()),
            Credentials::None => {}
            Credentials::Token { token } => *http.auth.write() = Some(format!("Bearer {token}")),
            Credentials::Password { username, password } => {
                *http.login.write() = Some((username.clone(), password.clone()));
                http.relogin(None).await?;
            }
        }
        // Fails now, not at the first call, if the credentials are refused.
        let _: Empty = http.call("auth/check", &Empty {}).await?;
        Ok(Remote { http, control_key: parking_lot::Mutex::new(None), changes_key: parking_lot::Mutex::new(None) })
    }

    pub(crate) async fn create_channels(
        &self,
        channels: Vec<NewChannel>,
        retrieve_if_name_exists: bool,
        place: Option<&str>,
    ) -> Result<Vec<Channel>> {
        let q = CreateChannels { channels, retrieve_if_name_exists, place: place.map(str::to_string) };
        let r: ChannelList = self.http.call("channels/create", &q).await?;
        Ok(r.channels)
    }

    pub(crate) async fn channels(&self, refs: &[ChannelRef]) -> Result<Vec<Channel>> {
        let r: ChannelList = self.http.call("channels/retrieve", &RetrieveChannels { refs: refs.to_vec() }).await?;
        Ok(r.channels)
    }

    pub(crate) async fn search_channels(&self, term: &str) -> Result<Vec<Channel>> {
        let r: ChannelList = self.http.call("channels/search", &Search { term: term.to_string(), overlapping: None }).await?;
        Ok(r.channels)
    }

    pub(crate) async fn rename_channel(&self, key: ChannelKey, name: &str) -> Result<Channel> {
        let r: ChannelOne = self.http.call("channels/rename", &RenameChannel { key, name: name.to_string() }).await?;
        Ok(r.channel)
    }

    pub(crate) async fn set_channel_compression(&self, key: ChannelKey, compression: Compression) -> Result<Channel> {
        let r: ChannelOne = self.http.call("channels/compression", &SetCompression { key, compression }).await?;
        Ok(r.channel)
    }

    pub(crate) async fn delete_channels(&self, keys: &[ChannelKey]) -> Result<()> {
        let _: Empty = self.http.call("channels/delete", &Keys { keys: keys.to_vec() }).await?;
        Ok(())
    }

    pub(crate) async fn create_range(&self, range: NewRange) -> Result<Range> {
        let r: RangeOne = self.http.call("ranges/create", &CreateRange { range }).await?;
        Ok(r.range)
    }

    pub(crate) async fn range(&self, key: Uuid) -> Result<Range> {
        let r: RangeOne = self.http.call("ranges/retrieve", &RangeKey { key }).await?;
        Ok(r.range)
    }

    pub(crate) async fn query_ranges(&self, q: &RangeQuery) -> Result<Vec<Range>> {
        let r: RangeList = self.http.call("ranges/search", q).await?;
        Ok(r.ranges)
    }

    pub(crate) async fn range_children(&self, key: Uuid) -> Result<Vec<Range>> {
        let r: RangeList = self.http.call("ranges/children", &RangeKey { key }).await?;
        Ok(r.ranges)
    }

    pub(crate) async fn set_range_labels(&self, key: Uuid, labels: Vec<String>) -> Result<Range> {
        let r: RangeOne = self.http.call("ranges/labels", &RangeLabels { key, labels }).await?;
        Ok(r.range)
    }

    pub(crate) async fn rename_range(&self, key: Uuid, name: &str) -> Result<Range> {
        let r: RangeOne = self.http.call("ranges/rename", &RenameRange { key, name: name.to_string() }).await?;
        Ok(r.range)
    }

    pub(crate) async fn delete_ranges(&self, keys: &[Uuid]) -> Result<()> {
        let _: Empty = self.http.call("ranges/delete", &RangeKeys { keys: keys.to_vec() }).await?;
        Ok(())
    }

    pub(crate) async fn range_meta(&self, key: Uuid) -> Result<BTreeMap<String, String>> {
        let r: Meta = self.http.call("ranges/meta/get", &RangeKey { key }).await?;
        Ok(r.entries)
    }

    pub(crate) async fn set_range_meta(&self, key: Uuid, entries: BTreeMap<String, String>) -> Result<()> {
        let _: Empty = self.http.call("ranges/meta/set", &Meta { key, entries }).await?;
        Ok(())
    }

    pub(crate) async fn delete_range_meta(&self, key: Uuid, names: &[String]) -> Result<()> {
        let _: Empty = self.http.call("ranges/meta/delete", &MetaNames { key, names: names.to_vec() }).await?;
        Ok(())
    }

    pub(crate) async fn read(&self, range: TimeRange, keys: &[ChannelKey], reduce: Option<Reduction>) -> Result<Frame> {
        let body = serde_json::to_vec(&ReadFrames { range, keys: keys.to_vec(), reduce }).map_err(|e| NetError::protocol(e.to_string()))?;
        let r = self.http.post_raw("frames/read", "application/json", Bytes::from(body)).await?;
        if !r.frame {
            return Err(NetError::protocol("the node answered a read without a frame").into());
        }
        Ok(codec::decode_compressed(r.body).map_err(|e| NetError::protocol(format!("bad frame from the node: {e}")))?)
    }

    pub(crate) async fn write(&self, start: TimeStamp, frame: Frame) -> Result<TimeStamp> {
        let r =
            self.http.post_raw(&format!("frames/write?start={}", start.0), FRAME_CONTENT_TYPE, Bytes::from(codec::encode(&frame))).await?;
        let e: End = http::decode(&r.body)?;
        Ok(e.end)
    }

    pub(crate) async fn delete(&self, range: TimeRange, keys: &[ChannelKey]) -> Result<()> {
        let _: Empty = self.http.call("frames/delete", &RangeOfKeys { range, keys: keys.to_vec() }).await?;
        Ok(())
    }

    pub(crate) async fn time_range(&self, key: ChannelKey) -> Result<Option<TimeRange>> {
        let r: Extent = self.http.call("channels/time_range", &Key { key }).await?;
        Ok(r.range)
    }

    pub(crate) async fn control_states(&self, keys: &[ChannelKey]) -> Result<Vec<State>> {
        let r: States = self.http.call("control/states", &Keys { keys: keys.to_vec() }).await?;
        Ok(r.states)
    }

    pub(crate) async fn control_channel(&self) -> Result<ChannelKey> {
        self.system_channel(&self.control_key, CONTROL_CHANNEL).await
    }

    pub(crate) async fn changes_channel(&self) -> Result<ChannelKey> {
        self.system_channel(&self.changes_key, crate::CHANGES_CHANNEL).await
    }

    /// The key of one of the node's system channels, looked up by name once.
    async fn system_channel(&self, cache: &parking_lot::Mutex<Option<ChannelKey>>, name: &str) -> Result<ChannelKey> {
        self.http.check_open()?;
        if let Some(k) = *cache.lock() {
            return Ok(k);
        }
        let found = self.channels(&[ChannelRef::Name(name.to_string())]).await?;
        let k = found.first().map(|c| c.key).ok_or_else(|| NetError::protocol(format!("the node has no {name} channel")))?;
        *cache.lock() = Some(k);
        Ok(k)
    }
}
