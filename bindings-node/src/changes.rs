//! `client.watchChanges()`: the core's change watcher, each change as a plain object.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::Change;
use telemetron::channel::ChannelChange;
use telemetron::ranger::RangeChange;
use telemetron::relay::StreamError;

use crate::channel::ChannelJs;
use crate::error::IntoNapi;
use crate::ranger::RangeJs;

/// One change to channels or ranges; `op` names it and the fields of its kind are set.
#[napi(object)]
pub struct ChangeJs {
    /// `channel.create`, `channel.rename`, `channel.delete`, `range.create`,
    /// `range.update`, `range.delete` or `range.meta`.
    pub op: String,
    /// The channels created, or the one renamed (under its new name).
    pub channels: Option<Vec<ChannelJs>>,
    /// The range created or updated, as it is now.
    pub ranges: Option<Vec<RangeJs>>,
    /// The channel keys (numbers) or range keys (strings) deleted.
    #[napi(ts_type = "Array<number> | Array<string>")]
    pub keys: Option<Either<Vec<u32>, Vec<String>>>,
    /// `range.meta`: the range.
    pub key: Option<String>,
    /// `range.meta`: the entries set, with their values.
    pub set: Option<HashMap<String, String>>,
    /// `range.meta`: the names removed.
    pub deleted: Option<Vec<String>>,
}

impl ChangeJs {
    fn of(op: &str) -> ChangeJs {
        ChangeJs { op: op.into(), channels: None, ranges: None, keys: None, key: None, set: None, deleted: None }
    }

    fn from_core(c: Change) -> ChangeJs {
        let chans = |op: &str, c: Vec<telemetron::channel::Channel>| ChangeJs {
            channels: Some(c.iter().map(ChannelJs::from_core).collect()),
            ..ChangeJs::of(op)
        };
        let ranges = |op: &str, r: Vec<telemetron::ranger::Range>| ChangeJs {
            ranges: Some(r.into_iter().map(RangeJs::from_core).collect()),
            ..ChangeJs::of(op)
        };
        match c {
            Change::Channel(ChannelChange::Created { channels }) => chans("channel.create", channels),
            Change::Channel(ChannelChange::Renamed { channels }) => chans("channel.rename", channels),
            Change::Channel(ChannelChange::Updated { channels }) => chans("channel.update", channels),
            Change::Channel(ChannelChange::Deleted { keys }) => ChangeJs { keys: Some(Either::A(keys)), ..ChangeJs::of("channel.delete") },
            Change::Range(RangeChange::Created { ranges: r }) => ranges("range.create", r),
            Change::Range(RangeChange::Updated { ranges: r }) => ranges("range.update", r),
            Change::Range(RangeChange::Deleted { keys }) => {
                ChangeJs { keys: Some(Either::B(keys.iter().map(ToString::to_string).collect())), ..ChangeJs::of("range.delete") }
            }
            Change::Range(RangeChange::Meta { key, set, deleted }) => ChangeJs {
                key: Some(key.to_string()),
                set: Some(set.into_iter().collect()),
                deleted: Some(deleted),
                ..ChangeJs::of("range.meta")
            },
        }
    }
}

/// Changes to channels and ranges from the moment it opened, each once, in commit order.
#[napi]
pub struct ChangeWatcher {
    inner: Arc<tokio::sync::Mutex<Option<telemetron::client::ChangeWatcher>>>,
    stop: Arc<tokio::sync::Notify>,
    closed: Arc<AtomicBool>,
}

impl ChangeWatcher {
    pub(crate) fn new(w: telemetron::client::ChangeWatcher) -> ChangeWatcher {
        ChangeWatcher { inner: Arc::new(tokio::sync::Mutex::new(Some(w))), stop: Default::default(), closed: Default::default() }
    }
}

#[napi]
impl ChangeWatcher {
    /// The next change; `null` once closed. Rejects with `stream.lagged` when changes
    /// were missed (list again; later calls continue).
    #[napi]
    pub async fn next(&self) -> Result<Option<ChangeJs>> {
        let mut g = self.inner.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let Some(w) = g.as_mut() else { return Ok(None) };
        tokio::select! {
            r = w.next() => match r {
                Ok(c) => Ok(Some(ChangeJs::from_core(c))),
                Err(telemetron::Error::Stream(StreamError::Closed)) => Ok(None),
                Err(e) => Err::<Option<ChangeJs>, _>(e).js(),
            },
            () = self.stop.notified() => Ok(None),
        }
    }

    /// Stop watching: a pending `next` resolves to `null`.
    #[napi]
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // A permit, so a `next` about to wait sees it too.
        self.stop.notify_one();
        if let Some(mut w) = self.inner.lock().await.take() {
            w.close().await;
        }
    }
}
