//! Control sequences and fixed-rate loops: a translation of `telemetron::client::Sequence`
//! and `Ticker` (the Python `Controller` in `telemetron/control.py` wraps these).
//!
//! Every wait releases the GIL and takes it back only to evaluate the caller's condition
//! (after each change of the values) and to check for Ctrl-C (at least every 100 ms).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};
use telemetron::channel::{Channel, ChannelRef};
use telemetron::client::{LoopStats, Tick, Ticker, Until, Wait};
use telemetron::control::Authority;
use telemetron::telem::{DataType, Series};

use crate::channel::{PyChannel, channel_ref};
use crate::error::{IntoPyResult, invalid, to_py};
use crate::runtime::runtime;
use crate::telem::{series_from_py, series_to_py};

/// A Python exception raised inside a Rust wait: carried out through the core's `Result`
/// and raised again as itself.
#[derive(Default)]
struct Carried(Option<PyErr>);

impl Carried {
    /// Keep `e`, give the core a placeholder error that stops the wait.
    fn carry(&mut self, e: PyErr) -> telemetron::Error {
        self.0 = Some(e);
        telemetron::Error::InvalidArgument { reason: "interrupted by a Python exception".into() }
    }

    /// The carried exception, or the core error.
    fn finish<T>(self, r: telemetron::Result<T>) -> PyResult<T> {
        match (r, self.0) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(to_py(e)),
        }
    }
}

/// Ctrl-C (and other signal handlers) as an interrupt check for the core's waits.
fn signals(carried: &mut Carried) -> telemetron::Result<()> {
    Python::attach(|py| py.check_signals()).map_err(|e| carried.carry(e))
}

fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| invalid(format!("{what} must be a non-negative number of seconds, not {s}")))
}

/// A one-sample series as a Python scalar (`float`, `int`, `bool`, `str`, ...).
pub fn scalar_to_py<'py>(py: Python<'py>, s: &Series) -> PyResult<Bound<'py, PyAny>> {
    let dt = s.data_type();
    let f = |x: f64| Ok(PyFloat::new(py, x).into_any());
    match dt {
        DataType::F64 => f(s.as_slice::<f64>().ok().and_then(|v| v.first().copied()).unwrap_or(f64::NAN)),
        DataType::F32 => f(s.as_slice::<f32>().ok().and_then(|v| v.first().copied()).map_or(f64::NAN, f64::from)),
        DataType::Bool => Ok(PyBool::new(py, s.data().first().is_some_and(|b| *b != 0)).to_owned().into_any()),
        _ => {
            let arr = series_to_py(py, s)?;
            let v = arr.get_item(0)?;
            if v.is_instance_of::<PyInt>() || !v.hasattr("item")? { Ok(v) } else { v.call_method0("item") }
        }
    }
}

/// A fixed-rate loop that holds its period (sleep in the kernel, then spin the last
/// `spin` seconds) and reports lateness and overruns. `telemetron.loop(hz)` and
/// `Controller.loop(hz)` iterate it.
#[pyclass(frozen, module = "telemetron._native", name = "Ticker")]
#[derive(Debug)]
pub struct PyTicker {
    inner: Mutex<Ticker>,
}

/// One iteration of a loop.
#[pyclass(frozen, module = "telemetron._native", name = "Tick", get_all)]
#[derive(Debug, Clone)]
pub struct PyTick {
    /// 0-based count of ticks, skipped ones included (overruns skip indexes).
    index: u64,
    /// Seconds since the loop started at which this tick was due.
    scheduled: f64,
    /// Seconds between when the tick was due and when the loop woke for it.
    late: f64,
    /// Ticks skipped just before this one because the body overran its period.
    missed: u64,
}

impl From<Tick> for PyTick {
    fn from(t: Tick) -> PyTick {
        PyTick { index: t.index, scheduled: t.scheduled.as_secs_f64(), late: t.late.as_secs_f64(), missed: t.missed }
    }
}

#[pymethods]
impl PyTick {
    fn __repr__(&self) -> String {
        format!("Tick(index={}, late={:.1} µs, missed={})", self.index, self.late * 1e6, self.missed)
    }
}

fn stats_to_py<'py>(py: Python<'py>, s: &LoopStats, period: Duration) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("hz", 1.0 / period.as_secs_f64())?;
    d.set_item("ticks", s.ticks)?;
    d.set_item("overruns", s.overruns)?;
    d.set_item("late_p50", s.p50.as_secs_f64())?;
    d.set_item("late_p99", s.p99.as_secs_f64())?;
    d.set_item("late_max", s.max.as_secs_f64())?;
    Ok(d)
}

#[pymethods]
impl PyTicker {
    /// A loop at `hz` ticks per second (0 < hz ≤ 1e6); `spin` seconds of each wait are
    /// spent spinning for precision (default 150 µs); it ends after `duration` seconds or
    /// `count` ticks (never if neither is given).
    #[new]
    #[pyo3(signature = (hz, spin = None, duration = None, count = None))]
    fn new(hz: f64, spin: Option<f64>, duration: Option<f64>, count: Option<u64>) -> PyResult<PyTicker> {
        let mut t = Ticker::new(hz).py()?;
        if let Some(s) = spin {
            t = t.with_spin(seconds(s, "spin")?);
        }
        if let Some(d) = duration {
            t = t.with_duration(seconds(d, "duration")?);
        }
        if let Some(n) = count {
            t = t.with_count(n);
        }
        Ok(PyTicker { inner: Mutex::new(t) })
    }

    /// The period in seconds.
    #[getter]
    fn period(&self) -> f64 {
        self.inner.lock().period().as_secs_f64()
    }

    /// Wait for the next tick (GIL released; Ctrl-C interrupts it); None once the loop's
    /// duration or count is reached.
    fn tick(&self, py: Python<'_>) -> PyResult<Option<PyTick>> {
        let mut carried = Carried::default();
        let r = py.detach(|| {
            let mut t = self.inner.lock();
            loop {
                if t.done() {
                    return Ok(None);
                }
                let started = std::time::Instant::now();
                if let Some(tick) = t.tick_or(Duration::from_millis(10), || started.elapsed() >= Duration::from_millis(100)) {
                    return Ok(Some(tick));
                }
                signals(&mut carried)?;
            }
        });
        carried.finish(r).map(|t| t.map(PyTick::from))
    }

    /// `{"hz", "ticks", "overruns", "late_p50", "late_p99", "late_max"}` (seconds).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = self.inner.lock();
        stats_to_py(py, &t.stats(), t.period())
    }
}

/// A running control sequence (see `telemetron.Controller`, which wraps it).
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct Sequence {
    inner: Arc<telemetron::client::Sequence>,
}

/// The core's loss hook for a Python callable `cb(names)` (called with the GIL from the
/// sequence's thread; an exception there is printed, there being nobody to raise it to).
pub fn lost_hook(cb: Py<PyAny>) -> telemetron::client::LostHook {
    Arc::new(move |names: &[String]| {
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (names.to_vec(),)) {
                e.print(py);
            }
        });
    })
}

/// The safe values `{channel: value}`, converted for their channels' data types.
pub fn safe_values(py: Python<'_>, client: &telemetron::Client, safe: &Bound<'_, PyDict>) -> PyResult<Vec<(ChannelRef, Series)>> {
    let refs: Vec<ChannelRef> = safe.keys().iter().map(|k| channel_ref(&k)).collect::<PyResult<_>>()?;
    let c = client.clone();
    let chans: Vec<Channel> = py.detach(|| runtime().block_on(c.channels(&refs))).py()?;
    chans.iter().zip(safe.values().iter()).map(|(ch, v)| Ok((ChannelRef::Key(ch.key), series_from_py(py, &v, ch)?))).collect()
}

impl From<telemetron::client::Sequence> for Sequence {
    fn from(s: telemetron::client::Sequence) -> Sequence {
        Sequence { inner: Arc::new(s) }
    }
}

impl Sequence {
    /// Run a sequence future with the GIL released.
    fn run<T: Send, Fut>(&self, py: Python<'_>, f: impl FnOnce(Arc<telemetron::client::Sequence>) -> Fut + Send) -> PyResult<T>
    where
        Fut: std::future::Future<Output = telemetron::Result<T>>,
    {
        let s = self.inner.clone();
        py.detach(move || runtime().block_on(f(s))).py()
    }

    fn channel(&self, obj: &Bound<'_, PyAny>) -> PyResult<&Channel> {
        let r = channel_ref(obj)?;
        self.inner.channel(&r).ok_or_else(|| {
            PyKeyError::new_err(format!(
                "{} is not one of control sequence {:?}'s channels",
                obj.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
                self.inner.name()
            ))
        })
    }
}

fn wait_kind(kind: &str, hold: Option<f64>) -> PyResult<Until> {
    match (kind, hold) {
        ("until", _) => Ok(Until::True),
        ("while", _) => Ok(Until::False),
        ("true_for", Some(h)) => Ok(Until::TrueFor(seconds(h, "duration")?)),
        _ => Err(invalid(format!("a wait is \"until\", \"while\" or \"true_for\" (with a duration), not {kind:?}"))),
    }
}

#[pymethods]
impl Sequence {
    /// The sequence's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The subject key its writer holds control under.
    #[getter]
    fn subject_key(&self) -> &str {
        self.inner.subject_key()
    }

    /// Channels it commands.
    #[getter]
    fn write_channels(&self) -> Vec<PyChannel> {
        self.inner.write_channels().iter().map(|c| PyChannel { inner: c.clone() }).collect()
    }

    /// Channels it follows.
    #[getter]
    fn read_channels(&self) -> Vec<PyChannel> {
        self.inner.read_channels().iter().map(|c| PyChannel { inner: c.clone() }).collect()
    }

    /// The latest value of a channel as a Python scalar, or None before the first.
    /// Raises KeyError for a channel that is not the sequence's.
    fn get<'py>(&self, py: Python<'py>, channel: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let key = self.channel(channel)?.key;
        self.inner.value(&ChannelRef::Key(key)).map(|s| scalar_to_py(py, &s)).transpose()
    }

    /// Every latest value by channel name.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (c, s) in self.inner.values() {
            d.set_item(c.name, scalar_to_py(py, &s)?)?;
        }
        Ok(d)
    }

    /// Command channels (`[(channel, value)]`); returns once applied, raises
    /// `ControlLost` if any command was not written.
    fn set(&self, py: Python<'_>, items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>) -> PyResult<()> {
        let mut cmds = Vec::with_capacity(items.len());
        for (ch, v) in &items {
            let c = self.channel(ch).map_err(|e| invalid(e.value(py).to_string()))?;
            cmds.push((ChannelRef::Key(c.key), series_from_py(py, v, c)?));
        }
        self.run(py, move |s| async move { s.set(cmds).await })
    }

    /// Change authorities: `[(channel or None for all, authority)]`.
    fn set_authority(&self, py: Python<'_>, changes: Vec<(Option<Bound<'_, PyAny>>, Authority)>) -> PyResult<()> {
        let changes = changes.iter().map(|(c, a)| Ok((c.as_ref().map(channel_ref).transpose()?, *a))).collect::<PyResult<Vec<_>>>()?;
        self.run(py, move |s| async move { s.set_authority(changes).await })
    }

    /// True if the sequence controls `channel` now (every write channel if None).
    #[pyo3(signature = (channel = None))]
    fn has_control(&self, channel: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        Ok(match channel {
            None => self.inner.has_control_all(),
            Some(c) => {
                let key = self.channel(c)?.key;
                self.inner.has_control(key)
            }
        })
    }

    /// Raise the pending error (a loss with raise-on-lost), once.
    fn check(&self) -> PyResult<()> {
        self.inner.check().py()
    }

    /// Wait `kind` ("until", "while", "true_for" with `hold` seconds) on `cond()`,
    /// evaluated now and after every change; False after `timeout` seconds.
    #[pyo3(signature = (kind, cond, timeout = None, hold = None))]
    fn wait(&self, py: Python<'_>, kind: &str, cond: Py<PyAny>, timeout: Option<f64>, hold: Option<f64>) -> PyResult<bool> {
        let mut w = Wait::new(wait_kind(kind, hold)?, timeout.map(|t| seconds(t, "timeout")).transpose()?);
        let carried = Mutex::new(Carried::default());
        let r = py.detach(|| {
            self.inner.wait_blocking(
                &mut w,
                || Python::attach(|py| cond.call0(py).and_then(|v| v.is_truthy(py))).map_err(|e| carried.lock().carry(e)),
                || signals(&mut carried.lock()),
            )
        });
        carried.into_inner().finish(r)
    }

    /// Sleep `seconds` precisely; raises early on a loss (raise-on-lost) or Ctrl-C.
    fn sleep(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        let d = self::seconds(seconds, "a sleep")?;
        let mut carried = Carried::default();
        let r = py.detach(|| self.inner.sleep_blocking(d, || signals(&mut carried)));
        carried.finish(r)
    }

    /// The next tick of `ticker` (None once it is done); raises early on a loss
    /// (raise-on-lost) or Ctrl-C.
    fn tick(&self, py: Python<'_>, ticker: &PyTicker) -> PyResult<Option<PyTick>> {
        let mut carried = Carried::default();
        let r = py.detach(|| {
            let mut t = ticker.inner.lock();
            self.inner.tick_blocking(&mut t, || signals(&mut carried))
        });
        carried.finish(r).map(|t| t.map(PyTick::from))
    }

    /// Write the safe values to the channels still held, then release.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |s| async move { s.abort().await })
    }

    /// Release control (idempotent).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |s| async move { s.release().await })
    }

    fn __repr__(&self) -> String {
        let names = |cs: &[Channel]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        format!(
            "Sequence(name={:?}, write={:?}, read={:?})",
            self.inner.name(),
            names(self.inner.write_channels()),
            names(self.inner.read_channels())
        )
    }
}
