//! `sequence`: control sequences and fixed-rate loops, a translation of
//! `telemetron::client::Sequence`, `Wait` and `Ticker` (`lib/control.js` wraps them).
//!
//! JavaScript conditions run on the JS thread, so a wait is driven from JS: `observe`,
//! evaluate the condition, `SequenceWait.check` (the core's rules), and while that answers
//! `null`, `await changed(wait)`. Losses of control reach JS through `nextLoss()`, a promise
//! per loss (no threadsafe function: the hook only queues the names).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use telemetron::channel::{Channel, ChannelRef};
use telemetron::client::{SequenceConfig, Tick, Ticker, Until, Wait};
use tokio::sync::{Notify, mpsc};

use crate::channel::{ChannelJs, channel_ref, channel_refs};
use crate::control::{authorities, authority};
use crate::error::{IntoNapi, invalid};
use crate::telem::{Column, FrameJs, SeriesJs};

/// How to start a sequence.
#[napi(object)]
pub struct SequenceOptionsJs {
    /// Shown in control state; names the command record.
    pub name: String,
    /// Channels to command.
    #[napi(ts_type = "Array<number | string>")]
    pub write: Vec<Either<u32, String>>,
    /// Channels to follow.
    #[napi(ts_type = "Array<number | string>")]
    pub read: Vec<Either<u32, String>>,
    /// One authority, or one per write channel (default 200).
    pub authorities: Option<Vec<u32>>,
    /// Reject the next call with `control.lost` after a loss (default true).
    pub raise_on_lost: Option<bool>,
    /// Keep the command record (default true).
    pub record: Option<bool>,
}

fn millis(ms: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| invalid(format!("{what} must be a non-negative number of ms, not {ms}")))
}

/// One loop iteration.
#[napi(object)]
pub struct TickJs {
    /// 0-based tick count, skipped ticks included.
    pub index: f64,
    /// When the tick was due, in ms since the loop started.
    pub scheduled: f64,
    /// How late the loop woke for it, in ms.
    pub late: f64,
    /// Ticks skipped just before it (the body overran).
    pub missed: f64,
}

impl From<Tick> for TickJs {
    fn from(t: Tick) -> TickJs {
        TickJs {
            index: t.index as f64,
            scheduled: t.scheduled.as_secs_f64() * 1e3,
            late: t.late.as_secs_f64() * 1e3,
            missed: t.missed as f64,
        }
    }
}

/// Lateness of a loop so far (ms).
#[napi(object)]
pub struct LoopStatsJs {
    /// The rate.
    pub hz: f64,
    /// Ticks so far.
    pub ticks: f64,
    /// Ticks skipped because the body overran.
    pub overruns: f64,
    /// Median lateness.
    pub late_p50: f64,
    /// 99th percentile lateness.
    pub late_p99: f64,
    /// Worst lateness.
    pub late_max: f64,
}

/// A fixed-rate loop (kernel sleep, then a short spin, on a blocking thread).
#[napi]
pub struct LoopTicker {
    inner: Arc<Mutex<Ticker>>,
}

#[napi]
impl LoopTicker {
    /// A loop at `hz` (0 < hz ≤ 1e6); `spinMs` of each wait are spun (default 0.15); it
    /// ends after `durationMs` or `count` ticks (never if neither is given).
    #[napi(constructor)]
    pub fn new(hz: f64, spin_ms: Option<f64>, duration_ms: Option<f64>, count: Option<u32>) -> Result<LoopTicker> {
        let mut t = Ticker::new(hz).js()?;
        if let Some(ms) = spin_ms {
            t = t.with_spin(millis(ms, "spinMs")?);
        }
        if let Some(ms) = duration_ms {
            t = t.with_duration(millis(ms, "duration")?);
        }
        if let Some(n) = count {
            t = t.with_count(u64::from(n));
        }
        Ok(LoopTicker { inner: Arc::new(Mutex::new(t)) })
    }

    /// The period in ms.
    #[napi(getter)]
    pub fn period(&self) -> f64 {
        self.inner.lock().period().as_secs_f64() * 1e3
    }

    /// Resolve at the next tick, or to null once the loop's duration or count is reached.
    #[napi]
    pub async fn tick(&self) -> Result<Option<TickJs>> {
        let t = self.inner.clone();
        tokio::task::spawn_blocking(move || t.lock().next())
            .await
            .map(|t| t.map(TickJs::from))
            .map_err(|e| invalid(format!("the loop's thread failed: {e}")))
    }

    /// Lateness so far.
    #[napi]
    pub fn stats(&self) -> LoopStatsJs {
        let t = self.inner.lock();
        let s = t.stats();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        LoopStatsJs {
            hz: 1.0 / t.period().as_secs_f64(),
            ticks: s.ticks as f64,
            overruns: s.overruns as f64,
            late_p50: ms(s.p50),
            late_p99: ms(s.p99),
            late_max: ms(s.max),
        }
    }
}

/// One wait in progress (the core's `Wait`: until, while, remains true for; timeout).
#[napi]
pub struct SequenceWait {
    inner: Mutex<Wait>,
}

#[napi]
impl SequenceWait {
    /// `kind` is "until", "while" or "trueFor" (with `holdMs`); `timeoutMs` null waits
    /// forever.
    #[napi(constructor)]
    pub fn new(kind: String, timeout_ms: Option<f64>, hold_ms: Option<f64>) -> Result<SequenceWait> {
        let until = match (kind.as_str(), hold_ms) {
            ("until", _) => Until::True,
            ("while", _) => Until::False,
            ("trueFor", Some(h)) => Until::TrueFor(millis(h, "a hold")?),
            _ => return Err(invalid(format!("a wait is \"until\", \"while\" or \"trueFor\" (with a duration), not {kind:?}"))),
        };
        let timeout = timeout_ms.map(|t| millis(t, "timeout")).transpose()?;
        Ok(SequenceWait { inner: Mutex::new(Wait::new(until, timeout)) })
    }

    /// Feed the condition's answer: true (satisfied), false (timed out) or null (wait on).
    #[napi]
    pub fn check(&self, holds: bool) -> Option<bool> {
        self.inner.lock().check(holds)
    }
}

/// A running control sequence.
#[napi]
pub struct Sequence {
    inner: Arc<telemetron::client::Sequence>,
    losses: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<String>>>>,
    released: Arc<(AtomicBool, Notify)>,
}

/// Start a sequence (`Client.acquire`).
pub(crate) async fn acquire(client: telemetron::Client, o: SequenceOptionsJs) -> Result<Sequence> {
    let mut cfg = SequenceConfig::new(o.name);
    cfg.write = channel_refs(&o.write);
    cfg.read = channel_refs(&o.read);
    if let Some(a) = &o.authorities {
        cfg.authorities = authorities(a)?;
    }
    cfg.raise_on_lost = o.raise_on_lost.unwrap_or(true);
    cfg.record = o.record.unwrap_or(true);
    let (tx, rx) = mpsc::unbounded_channel();
    cfg.on_lost = Some(Arc::new(move |names: &[String]| {
        let _ = tx.send(names.to_vec());
    }));
    let seq = client.acquire(cfg).await.js()?;
    Ok(Sequence {
        inner: Arc::new(seq),
        losses: Arc::new(tokio::sync::Mutex::new(rx)),
        released: Arc::new((AtomicBool::new(false), Notify::new())),
    })
}

impl Sequence {
    fn channel(&self, r: &Either<u32, String>) -> Result<&Channel> {
        self.inner.channel(&channel_ref(r)).ok_or_else(|| {
            let what = match r {
                Either::A(k) => format!("channel {k}"),
                Either::B(n) => format!("channel {n:?}"),
            };
            invalid(format!(
                "{what} is not one of control sequence {:?}'s channels; acquire it with write: [...] or read: [...]",
                self.inner.name()
            ))
        })
    }

    fn series(&self, channels: &[Either<u32, String>], values: &[Unknown]) -> Result<Vec<(ChannelRef, telemetron::telem::Series)>> {
        if channels.len() != values.len() {
            return Err(invalid("pass one value per channel"));
        }
        channels
            .iter()
            .zip(values)
            .map(|(r, v)| {
                let c = self.channel(r)?;
                Ok((ChannelRef::Key(c.key), Column::from_js(v)?.into_series(c)?))
            })
            .collect()
    }
}

#[napi]
impl Sequence {
    /// The sequence's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Its subject key in control state.
    #[napi(getter)]
    pub fn subject_key(&self) -> String {
        self.inner.subject_key().to_string()
    }

    /// Channels it commands.
    #[napi(getter)]
    pub fn write_channels(&self) -> Vec<ChannelJs> {
        self.inner.write_channels().iter().map(ChannelJs::from_core).collect()
    }

    /// Channels it follows.
    #[napi(getter)]
    pub fn read_channels(&self) -> Vec<ChannelJs> {
        self.inner.read_channels().iter().map(ChannelJs::from_core).collect()
    }

    /// The latest value of a channel as a one-sample series (null before the first, or
    /// for a channel that is not the sequence's).
    #[napi(catch_unwind)]
    pub fn value(&self, #[napi(ts_arg_type = "number | string")] channel: Either<u32, String>) -> Option<SeriesJs> {
        self.inner.value(&channel_ref(&channel)).map(SeriesJs::from_core)
    }

    /// The latest values (one-sample series), by channel.
    #[napi]
    pub fn values(&self) -> FrameJs {
        let mut f = telemetron::telem::Frame::with_capacity(4);
        for (c, s) in self.inner.values() {
            f.push(c.key, s);
        }
        FrameJs::from_core(f)
    }

    /// Command channels; resolves once applied, rejects with `control.lost` if any
    /// command was not written.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        #[napi(ts_arg_type = "Array<unknown>")] values: Vec<Unknown>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let cmds = self.series(&channels, &values)?;
        let s = self.inner.clone();
        env.spawn_future(async move { s.set(cmds).await.js() })
    }

    /// The values `abort` writes (each a single value for a write channel).
    #[napi(catch_unwind)]
    pub fn set_safe(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        #[napi(ts_arg_type = "Array<unknown>")] values: Vec<Unknown>,
    ) -> Result<()> {
        let safe = self.series(&channels, &values)?;
        self.inner.set_safe(safe).js()
    }

    /// Change authorities: `channels[i]` (null: every write channel) to `values[i]`.
    #[napi]
    pub async fn set_authority(
        &self,
        #[napi(ts_arg_type = "Array<number | string | null>")] channels: Vec<Option<Either<u32, String>>>,
        values: Vec<u32>,
    ) -> Result<()> {
        if channels.len() != values.len() {
            return Err(invalid("pass one authority per channel"));
        }
        let changes =
            channels.iter().zip(&values).map(|(c, a)| Ok((c.as_ref().map(channel_ref), authority(*a)?))).collect::<Result<Vec<_>>>()?;
        self.inner.set_authority(changes).await.js()
    }

    /// True if the sequence controls `channel` (every write channel when omitted).
    #[napi(catch_unwind)]
    pub fn has_control(&self, #[napi(ts_arg_type = "number | string")] channel: Option<Either<u32, String>>) -> Result<bool> {
        Ok(match channel {
            None => self.inner.has_control_all(),
            Some(r) => self.inner.has_control(self.channel(&r)?.key),
        })
    }

    /// Throw the pending error (a loss with raise-on-lost; `engine.closed` after release).
    #[napi(catch_unwind)]
    pub fn check(&self) -> Result<()> {
        self.inner.check().js()
    }

    /// Start an evaluation of `wait`: throws the pending error.
    #[napi(catch_unwind)]
    pub fn observe(&self, wait: &SequenceWait) -> Result<()> {
        self.inner.observe(&mut wait.inner.lock()).js()
    }

    /// Resolve when the values change after the last `observe`, or at the wait's wake time.
    #[napi]
    pub async fn changed(&self, wait: &SequenceWait) -> Result<()> {
        let w = wait.inner.lock().clone();
        self.inner.changed(&w).await;
        Ok(())
    }

    /// Sleep precisely (kernel sleep, then a spin, on a blocking thread); rejects early on
    /// a loss (raise-on-lost).
    #[napi]
    pub async fn sleep(&self, ms: f64) -> Result<()> {
        let d = millis(ms, "a sleep")?;
        let s = self.inner.clone();
        tokio::task::spawn_blocking(move || s.sleep_blocking(d, || Ok(())))
            .await
            .map_err(|e| invalid(format!("the sleep's thread failed: {e}")))?
            .js()
    }

    /// The next tick of `ticker` (null once it is done); rejects early on a loss
    /// (raise-on-lost).
    #[napi]
    pub async fn tick(&self, ticker: &LoopTicker) -> Result<Option<TickJs>> {
        let s = self.inner.clone();
        let t = ticker.inner.clone();
        tokio::task::spawn_blocking(move || s.tick_blocking(&mut t.lock(), || Ok(())))
            .await
            .map_err(|e| invalid(format!("the loop's thread failed: {e}")))?
            .js()
            .map(|t| t.map(TickJs::from))
    }

    /// The names of the next channels lost, or null once released.
    #[napi]
    pub async fn next_loss(&self) -> Result<Option<Vec<String>>> {
        let released = self.released.clone();
        let mut rx = self.losses.lock().await;
        let notified = released.1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if released.0.load(Ordering::Acquire) {
            return Ok(rx.try_recv().ok());
        }
        tokio::select! {
            names = rx.recv() => Ok(names),
            () = notified => Ok(rx.try_recv().ok()),
        }
    }

    /// Write the safe values to the channels still held, then release.
    #[napi]
    pub async fn abort(&self) -> Result<()> {
        let r = self.inner.abort().await.js();
        self.mark_released();
        r
    }

    /// Release control (idempotent).
    #[napi]
    pub async fn release(&self) -> Result<()> {
        let r = self.inner.release().await.js();
        self.mark_released();
        r
    }
}

impl Sequence {
    fn mark_released(&self) {
        self.released.0.store(true, Ordering::Release);
        self.released.1.notify_waiters();
    }
}
