//! `framer`: writers and iterators.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::channel::{Channel, ChannelKey};
use telemetron::client::{ClientIterator, ClientWriter};
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig, WriterMode};
use telemetron::storage::Durability;
use telemetron::telem::TimeSpan;
use tokio::sync::Mutex;

use crate::channel::channel_refs;
use crate::control::{authorities, authority};
use crate::error::{IntoNapi, closed, coded, invalid};
use crate::telem::{FrameJs, TimeRangeJs, big, columns, frame, reduction, timestamp};

/// How to open a writer.
#[napi(object)]
pub struct WriterOptionsJs {
    /// The earliest timestamp the writer may write (ns).
    pub start: BigInt,
    /// Optional exclusive end of the writer's time region (ns).
    pub end: Option<BigInt>,
    /// Channels to write (keys or names); each data channel's index is added.
    #[napi(ts_type = "Array<number | string>")]
    pub channels: Vec<Either<u32, String>>,
    /// One authority for all channels, or one per channel (default 255).
    pub authorities: Option<Vec<u32>>,
    /// `"persist_stream"` (default), `"persist"` or `"stream"`.
    pub mode: Option<String>,
    /// A name for logs and control state.
    pub name: Option<String>,
    /// Who is writing (control state); a random key is generated when absent.
    pub subject_key: Option<String>,
    /// Fail writes to channels this writer does not control.
    pub err_on_unauthorized: Option<bool>,
    /// Commit after writes (default true).
    pub auto_commit: Option<bool>,
    /// With auto-commit, commit at most this often (ms; 0 = after every write).
    pub auto_commit_interval_ms: Option<f64>,
    /// `"none"` or `"commit"`; default is the engine's (interval group commit).
    pub durability: Option<String>,
}

fn writer_mode(s: &str) -> Result<WriterMode> {
    match s {
        "persist_stream" | "persistStream" => Ok(WriterMode::PersistStream),
        "persist" => Ok(WriterMode::Persist),
        "stream" => Ok(WriterMode::Stream),
        o => Err(invalid(format!("writer mode {o:?} is not \"persist_stream\", \"persist\" or \"stream\""))),
    }
}

impl WriterOptionsJs {
    pub(crate) fn to_core(&self, keys: Vec<ChannelKey>) -> Result<WriterConfig> {
        let mut c = WriterConfig::new(timestamp(&self.start)?, keys);
        if let Some(e) = &self.end {
            c = c.end(timestamp(e)?);
        }
        if let Some(a) = &self.authorities {
            c.authorities = authorities(a)?;
        }
        if let Some(m) = &self.mode {
            c = c.mode(writer_mode(m)?);
        }
        if let Some(n) = &self.name {
            c = c.name(n.clone());
        }
        if let Some(k) = &self.subject_key {
            c.subject.key = k.clone();
        }
        c.err_on_unauthorized = self.err_on_unauthorized.unwrap_or(false);
        c.auto_commit = self.auto_commit.unwrap_or(true);
        if let Some(ms) = self.auto_commit_interval_ms {
            if !(ms.is_finite() && ms >= 0.0) {
                return Err(invalid(format!("autoCommitIntervalMs {ms} must be a finite number >= 0")));
            }
            c.auto_commit_interval = Duration::from_secs_f64(ms / 1000.0);
        }
        if let Some(d) = self.durability.as_deref() {
            c.durability = Some(d.parse::<Durability>().map_err(invalid)?);
        }
        Ok(c)
    }
}

/// What a write did.
#[napi(object)]
pub struct WriteReportJs {
    /// Names of channels that were not written because another writer controls them: of
    /// this frame, and of earlier frames a node dropped since the last report because
    /// control moved while they were in flight (`WriteReport::not_written`).
    pub unauthorized: Vec<String>,
}

impl WriterChannels {
    fn report(&self, report: &telemetron::framer::WriteReport) -> WriteReportJs {
        let unauthorized =
            report.not_written().iter().map(|k| self.by_key.get(k).map_or_else(|| k.to_string(), |c| c.name.clone())).collect();
        WriteReportJs { unauthorized }
    }
}

/// The channels a writer may write, by key and name.
pub(crate) struct WriterChannels {
    by_key: HashMap<ChannelKey, Channel>,
    by_name: HashMap<String, ChannelKey>,
}

impl WriterChannels {
    pub(crate) fn new(channels: Vec<Channel>) -> WriterChannels {
        let by_name = channels.iter().map(|c| (c.name.clone(), c.key)).collect();
        WriterChannels { by_key: channels.into_iter().map(|c| (c.key, c)).collect(), by_name }
    }

    fn get(&self, r: &Either<u32, String>) -> Result<&Channel> {
        let key = match r {
            Either::A(k) => Some(*k),
            Either::B(n) => self.by_name.get(n).copied(),
        };
        key.and_then(|k| self.by_key.get(&k)).ok_or_else(|| {
            let what = match r {
                Either::A(k) => format!("channel {k}"),
                Either::B(n) => format!("channel {n:?}"),
            };
            coded("write.not_in_writer", format!("{what} is not one of this writer's channels; open the writer on it"))
        })
    }
}

/// An open writer. Writes are applied in call order.
#[napi]
pub struct Writer {
    inner: Arc<Mutex<Option<ClientWriter>>>,
    channels: Arc<WriterChannels>,
}

impl Writer {
    pub(crate) fn new(w: ClientWriter, channels: WriterChannels) -> Writer {
        Writer { inner: Arc::new(Mutex::new(Some(w))), channels: Arc::new(channels) }
    }
}

#[napi]
impl Writer {
    /// Write one frame given as parallel arrays of channels and samples. Typed arrays of the
    /// channel's element type are not copied (see `telem`).
    #[napi(catch_unwind, ts_return_type = "Promise<WriteReportJs>")]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        #[napi(ts_arg_type = "Array<unknown>")] values: Vec<Unknown>,
        confirm: Option<bool>,
    ) -> Result<PromiseRaw<'env, WriteReportJs>> {
        if channels.len() != values.len() {
            return Err(invalid("pass one value per channel"));
        }
        let chans = channels.iter().map(|r| self.channels.get(r)).collect::<Result<Vec<_>>>()?;
        let f = frame(&chans, columns(&values)?)?;
        let inner = self.inner.clone();
        let names = self.channels.clone();
        // The frame goes back to the JS thread with the result and is dropped there, so the
        // typed arrays' napi references are released directly (dropping them on a tokio
        // thread would queue one threadsafe-function call per array).
        env.spawn_future_with_callback(
            async move {
                let mut g = inner.lock().await;
                let w = g.as_mut().ok_or_else(|| closed("the writer"))?;
                let report = if confirm.unwrap_or(false) { w.write_confirmed(&f).await } else { w.write(&f).await }.js()?;
                Ok((names.report(&report), f))
            },
            |_, (report, f)| {
                drop(f);
                Ok(report)
            },
        )
    }

    /// Wait until every write so far has been applied (by the node, when remote); resolves
    /// to what was dropped since the last report.
    #[napi]
    pub async fn confirm(&self) -> Result<WriteReportJs> {
        let mut g = self.inner.lock().await;
        let w = g.as_mut().ok_or_else(|| closed("the writer"))?;
        Ok(self.channels.report(&w.confirm().await.js()?))
    }

    /// Commit everything written so far; resolves to the committed end (ns).
    #[napi]
    pub async fn commit(&self) -> Result<BigInt> {
        let mut g = self.inner.lock().await;
        let w = g.as_mut().ok_or_else(|| closed("the writer"))?;
        Ok(big(w.commit().await.js()?.0))
    }

    /// Set one authority for every channel.
    #[napi]
    pub async fn set_authority(&self, value: u32) -> Result<()> {
        let a = authority(value)?;
        let mut g = self.inner.lock().await;
        g.as_mut().ok_or_else(|| closed("the writer"))?.set_authority(a).await.js()
    }

    /// Set the authority of some channels (parallel arrays).
    #[napi]
    pub async fn set_authorities(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        values: Vec<u32>,
    ) -> Result<()> {
        if channels.len() != values.len() {
            return Err(invalid("pass one authority per channel"));
        }
        let mut changes = Vec::with_capacity(channels.len());
        for (r, a) in channels.iter().zip(values) {
            changes.push((self.channels.get(r)?.key, authority(a)?));
        }
        let mut g = self.inner.lock().await;
        g.as_mut().ok_or_else(|| closed("the writer"))?.set_authorities(&changes).await.js()
    }

    /// True if this writer controls the channel (and its index) now.
    #[napi(catch_unwind)]
    pub fn has_control(&self, #[napi(ts_arg_type = "number | string")] channel: Either<u32, String>) -> Result<bool> {
        let key = self.channels.get(&channel)?.key;
        let g = self.inner.blocking_lock();
        Ok(g.as_ref().is_some_and(|w| w.has_control(key)))
    }

    /// Commit and close; resolves to the committed end. Control passes to the next writer.
    #[napi]
    pub async fn close(&self) -> Result<BigInt> {
        let w = self.inner.lock().await.take().ok_or_else(|| closed("the writer"))?;
        Ok(big(w.close().await.js()?.0))
    }

    /// Close without committing. Idempotent.
    #[napi]
    pub async fn abort(&self) -> Result<()> {
        if let Some(w) = self.inner.lock().await.take() {
            w.abort().await;
        }
        Ok(())
    }
}

/// How far an iterator moves: `samples` of the lead index, `span` nanoseconds, or the
/// configured chunk size when both are absent.
#[napi(object)]
pub struct IterSpanJs {
    /// Samples of the first channel's index.
    pub samples: Option<f64>,
    /// Nanoseconds of time.
    pub span: Option<BigInt>,
}

fn iter_span(s: Option<IterSpanJs>) -> Result<IterSpan> {
    match s {
        None => Ok(IterSpan::Auto),
        Some(IterSpanJs { samples: Some(n), .. }) if n >= 1.0 && n.fract() == 0.0 => Ok(IterSpan::Samples(n as u64)),
        Some(IterSpanJs { samples: Some(n), .. }) => Err(invalid(format!("samples {n} must be a whole number >= 1"))),
        Some(IterSpanJs { span: Some(t), .. }) => Ok(IterSpan::Time(TimeSpan(timestamp(&t)?.0))),
        Some(_) => Ok(IterSpan::Auto),
    }
}

/// How to open an iterator.
#[napi(object)]
pub struct IteratorOptionsJs {
    /// The range to iterate over.
    pub bounds: TimeRangeJs,
    /// Stored channels to read (keys or names).
    #[napi(ts_type = "Array<number | string>")]
    pub channels: Vec<Either<u32, String>>,
    /// Samples per chunk (default 100,000).
    pub chunk_size: Option<f64>,
    /// Reduce each chunk to at most this many points per channel.
    pub points: Option<f64>,
    /// `"minmax"` (default) or `"average"`.
    pub reduce: Option<String>,
}

impl IteratorOptionsJs {
    pub(crate) fn refs(&self) -> Vec<telemetron::client::ChannelRef> {
        channel_refs(&self.channels)
    }

    pub(crate) fn to_core(&self, keys: Vec<ChannelKey>) -> Result<IteratorConfig> {
        let mut c = IteratorConfig::new(self.bounds.to_core()?, keys);
        if let Some(n) = self.chunk_size {
            if !(n >= 1.0 && n.fract() == 0.0) {
                return Err(invalid(format!("chunkSize {n} must be a whole number >= 1")));
            }
            c.chunk_size = n as u64;
        }
        c.reduce = reduction(self.points, self.reduce.as_deref())?;
        Ok(c)
    }
}

/// A cursor over stored data (see the core's `framer::Iterator`).
#[napi]
pub struct Iterator {
    inner: Arc<Mutex<ClientIterator>>,
}

impl Iterator {
    pub(crate) fn new(i: ClientIterator) -> Iterator {
        Iterator { inner: Arc::new(Mutex::new(i)) }
    }
}

#[napi]
impl Iterator {
    /// Move to the first sample; false if the bounds hold no data.
    #[napi]
    pub async fn seek_first(&self) -> Result<bool> {
        self.inner.lock().await.seek_first().await.js()
    }

    /// Move past the last sample; false if the bounds hold no data.
    #[napi]
    pub async fn seek_last(&self) -> Result<bool> {
        self.inner.lock().await.seek_last().await.js()
    }

    /// Move to the first sample at or after `t` (ns).
    #[napi]
    pub async fn seek_ge(&self, t: BigInt) -> Result<bool> {
        let t = timestamp(&t)?;
        self.inner.lock().await.seek_ge(t).await.js()
    }

    /// Move just past the last sample at or before `t` (ns).
    #[napi]
    pub async fn seek_le(&self, t: BigInt) -> Result<bool> {
        let t = timestamp(&t)?;
        self.inner.lock().await.seek_le(t).await.js()
    }

    /// Move forward and read: the frame, or `null` when there is nothing more.
    #[napi]
    pub async fn next(&self, span: Option<IterSpanJs>) -> Result<Option<FrameJs>> {
        let span = iter_span(span)?;
        let mut g = self.inner.lock().await;
        Ok(if g.next(span).await.js()? { Some(FrameJs::from_core(g.take_value())) } else { None })
    }

    /// Move backward and read: the frame, or `null` when there is nothing more.
    #[napi]
    pub async fn prev(&self, span: Option<IterSpanJs>) -> Result<Option<FrameJs>> {
        let span = iter_span(span)?;
        let mut g = self.inner.lock().await;
        Ok(if g.prev(span).await.js()? { Some(FrameJs::from_core(g.take_value())) } else { None })
    }
}
