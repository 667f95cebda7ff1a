//! Writers and iterators.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use telemetron::channel::{Channel, ChannelKey};
use telemetron::client::{ClientIterator, ClientWriter};
use telemetron::control::Authority;
use telemetron::framer::{IterSpan, WriteReport, WriterMode};
use telemetron::telem::{TimeSpan, TimeStamp};

use crate::channel::{ChanMap, PyChannel};
use crate::error::{IntoPyResult, invalid, to_py};
use crate::runtime::runtime;
use crate::telem::{NativeFrame, frame_from_py};

/// Parse a writer mode name.
pub fn writer_mode(mode: &str) -> PyResult<WriterMode> {
    match mode.replace('-', "_").to_ascii_lowercase().as_str() {
        "persist_stream" => Ok(WriterMode::PersistStream),
        "persist" => Ok(WriterMode::Persist),
        "stream" => Ok(WriterMode::Stream),
        other => Err(invalid(format!("writer mode must be \"persist_stream\", \"persist\" or \"stream\", not {other:?}"))),
    }
}

fn closed_writer() -> telemetron::Error {
    telemetron::Error::Closed { what: "the writer".into() }
}

/// An open writer (see `telemetron.Writer`, which wraps it).
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct Writer {
    inner: Mutex<Option<ClientWriter>>,
    chans: Arc<ChanMap>,
}

impl Writer {
    pub fn new(w: ClientWriter, chans: Arc<ChanMap>) -> Writer {
        Writer { inner: Mutex::new(Some(w)), chans }
    }

    fn channel(&self, obj: &Bound<'_, PyAny>) -> PyResult<Channel> {
        match self.chans.lookup(obj)? {
            Some(c) => Ok(c.clone()),
            None => Err(to_py(
                telemetron::storage::WriteError::InvalidConfig {
                    reason: format!("channel {} is not one of this writer's channels; open the writer on it", obj.repr()?),
                }
                .into(),
            )),
        }
    }

    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut ClientWriter) -> telemetron::Result<T> + Send) -> PyResult<T> {
        py.detach(|| {
            let mut g = self.inner.lock();
            match g.as_mut() {
                Some(w) => f(w),
                None => Err(closed_writer()),
            }
        })
        .py()
    }
}

impl Writer {
    /// The names of what `report` says was not written, or None.
    fn not_written(&self, report: &WriteReport) -> Option<Vec<String>> {
        let keys = report.not_written();
        (!keys.is_empty())
            .then(|| keys.iter().map(|k| self.chans.by_key.get(k).map_or_else(|| k.to_string(), |c| c.name.clone())).collect())
    }
}

#[pymethods]
impl Writer {
    /// Write `{channel: values}`. Returns None if every channel was written, else the
    /// names of the channels not written (`WriteReport::not_written`: refused because another
    /// writer controls them, or dropped by the node from this or an earlier write because
    /// control moved in flight). With `confirm`, waits until the node has applied the write.
    #[pyo3(signature = (data, confirm=false))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyDict>, confirm: bool) -> PyResult<Option<Vec<String>>> {
        let frame = frame_from_py(py, data, |k| self.channel(k))?;
        let report =
            self.with(py, |w| runtime().block_on(async { if confirm { w.write_confirmed(&frame).await } else { w.write(&frame).await } }))?;
        Ok(self.not_written(&report))
    }

    /// Wait until every write so far has been applied; None, or the names of channels the
    /// node dropped since the last report.
    fn confirm(&self, py: Python<'_>) -> PyResult<Option<Vec<String>>> {
        let report = self.with(py, |w| runtime().block_on(w.confirm()))?;
        Ok(self.not_written(&report))
    }

    /// Commit what was written; returns the committed end (ns).
    fn commit(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(self.with(py, |w| runtime().block_on(w.commit()))?.0)
    }

    /// Set one authority for every channel.
    fn set_authority(&self, py: Python<'_>, authority: Authority) -> PyResult<()> {
        self.with(py, |w| runtime().block_on(w.set_authority(authority)))
    }

    /// Set the authority of some channels: `[(channel, authority), ...]`.
    fn set_authorities(&self, py: Python<'_>, changes: Vec<(Bound<'_, PyAny>, Authority)>) -> PyResult<()> {
        let ch: Vec<(ChannelKey, Authority)> = changes.iter().map(|(c, a)| Ok((self.channel(c)?.key, *a))).collect::<PyResult<_>>()?;
        self.with(py, |w| runtime().block_on(w.set_authorities(&ch)))
    }

    /// True if this writer controls `channel` (and its index) now.
    fn has_control(&self, py: Python<'_>, channel: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = self.channel(channel)?.key;
        self.with(py, |w| Ok(w.has_control(key)))
    }

    /// The writer's channels (indexes of data channels included).
    fn channels(&self) -> Vec<PyChannel> {
        let mut v: Vec<PyChannel> = self.chans.by_key.values().map(|c| PyChannel { inner: c.clone() }).collect();
        v.sort_by_key(|c| c.inner.key);
        v
    }

    /// True once closed or aborted.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.lock().is_none())
    }

    /// Commit and close; returns the committed end (ns). Closing twice is a no-op
    /// returning None.
    fn close(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        let w = py.detach(|| self.inner.lock().take());
        match w {
            Some(w) => Ok(Some(py.detach(|| runtime().block_on(w.close())).py()?.0)),
            None => Ok(None),
        }
    }

    /// Close without committing (uncommitted samples are discarded).
    fn abort(&self, py: Python<'_>) {
        if let Some(w) = py.detach(|| self.inner.lock().take()) {
            py.detach(|| runtime().block_on(w.abort()));
        }
    }
}

/// An open iterator (see `telemetron.Iterator`, which wraps it).
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct Iterator {
    inner: Mutex<Option<ClientIterator>>,
    chans: Arc<ChanMap>,
}

impl Iterator {
    pub fn new(it: ClientIterator, chans: Arc<ChanMap>) -> Iterator {
        Iterator { inner: Mutex::new(Some(it)), chans }
    }

    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut ClientIterator) -> telemetron::Result<T> + Send) -> PyResult<T> {
        py.detach(|| {
            let mut g = self.inner.lock();
            match g.as_mut() {
                Some(i) => f(i),
                None => Err(telemetron::Error::Closed { what: "the iterator".into() }),
            }
        })
        .py()
    }
}

fn span(samples: Option<u64>, span_ns: Option<i64>) -> IterSpan {
    match (samples, span_ns) {
        (Some(n), _) => IterSpan::Samples(n),
        (None, Some(ns)) => IterSpan::Time(TimeSpan(ns)),
        (None, None) => IterSpan::Auto,
    }
}

#[pymethods]
impl Iterator {
    /// Move to the first sample; False if the bounds hold no data.
    fn seek_first(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |i| runtime().block_on(i.seek_first()))
    }

    /// Move past the last sample; False if the bounds hold no data.
    fn seek_last(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |i| runtime().block_on(i.seek_last()))
    }

    /// Move to the first sample at or after `t` (ns).
    fn seek_ge(&self, py: Python<'_>, t: i64) -> PyResult<bool> {
        self.with(py, |i| runtime().block_on(i.seek_ge(TimeStamp(t))))
    }

    /// Move just past the last sample at or before `t` (ns).
    fn seek_le(&self, py: Python<'_>, t: i64) -> PyResult<bool> {
        self.with(py, |i| runtime().block_on(i.seek_le(TimeStamp(t))))
    }

    /// Read forward by `samples` samples, `span` ns, or the chunk size; False at the end.
    #[pyo3(signature = (samples=None, span=None))]
    fn next(&self, py: Python<'_>, samples: Option<u64>, span: Option<i64>) -> PyResult<bool> {
        let s = self::span(samples, span);
        self.with(py, |i| runtime().block_on(i.next(s)))
    }

    /// Read backward by `samples` samples, `span` ns, or the chunk size; False at the start.
    #[pyo3(signature = (samples=None, span=None))]
    fn prev(&self, py: Python<'_>, samples: Option<u64>, span: Option<i64>) -> PyResult<bool> {
        let s = self::span(samples, span);
        self.with(py, |i| runtime().block_on(i.prev(s)))
    }

    /// Take the frame read by the last next/prev.
    fn value(&self, py: Python<'_>) -> PyResult<NativeFrame> {
        let frame = self.with(py, |i| Ok(i.take_value()))?;
        Ok(NativeFrame { frame, chans: self.chans.clone(), complete: true })
    }

    /// Close the iterator.
    fn close(&self, py: Python<'_>) {
        drop(py.detach(|| self.inner.lock().take()));
    }
}

/// Benchmark helper: `n` one-sample writes of `{index: t, channel: x}` through the core's
/// writer without Python in the loop (auto-commit off, one commit at the end); returns the
/// seconds the writes took. `benchmarks/bench.py` subtracts it from the same loop run
/// through `Writer.write` to get the Python-side overhead.
#[pyfunction]
pub fn _bench_core_write_one(
    py: Python<'_>,
    client: &crate::client::Client,
    index: &Bound<'_, PyAny>,
    channel: &Bound<'_, PyAny>,
    start: i64,
    n: usize,
) -> PyResult<f64> {
    use telemetron::framer::WriterConfig;
    use telemetron::telem::{Frame, Series};
    let refs = vec![crate::channel::channel_ref(index)?, crate::channel::channel_ref(channel)?];
    let c = client.inner.clone();
    py.detach(move || {
        runtime().block_on(async move {
            let ch = c.channels(&refs).await?;
            let (ik, dk) = (ch[0].key, ch[1].key);
            let mut w = c.open_writer(WriterConfig::new(TimeStamp(start), vec![dk]).auto_commit(false)).await?;
            let t = std::time::Instant::now();
            for i in 0..n {
                let f = Frame::new().with(ik, Series::timestamps(vec![start + i as i64])).with(dk, Series::from_vec(vec![i as f64]));
                w.write(&f).await?;
            }
            let secs = t.elapsed().as_secs_f64();
            w.close().await?;
            Ok(secs)
        })
    })
    .py()
}

/// Benchmark helper: the `telemetron bench ingest` loop on `client`: `frames` frames of
/// `index` plus every channel of `data` (`batch` float64 samples each, buffers shared by all
/// frames), a commit after each; returns the seconds from the first write to the close.
#[pyfunction]
pub fn _bench_core_ingest(
    py: Python<'_>,
    client: &crate::client::Client,
    index: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    batch: usize,
    frames: usize,
) -> PyResult<f64> {
    use telemetron::framer::WriterConfig;
    use telemetron::telem::{Frame, Series};
    let iref = crate::channel::channel_ref(index)?;
    let drefs = crate::channel::channel_refs(data)?;
    let c = client.inner.clone();
    py.detach(move || {
        runtime().block_on(async move {
            let ik = c.channels(&[iref]).await?[0].key;
            let keys: Vec<ChannelKey> = c.channels(&drefs).await?.iter().map(|c| c.key).collect();
            let series: Vec<Series> =
                (0..keys.len()).map(|k| Series::from_vec((0..batch).map(|i| (i + k) as f64 * 0.5).collect::<Vec<f64>>())).collect();
            let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), keys.clone()).auto_commit(false)).await?;
            let t = std::time::Instant::now();
            let mut ts = 0i64;
            for _ in 0..frames {
                let stamps: Vec<i64> = (0..batch as i64).map(|i| ts + i).collect();
                ts += batch as i64;
                let mut f = Frame::with_capacity(keys.len() + 1);
                f.push(ik, Series::timestamps(stamps));
                for (k, s) in keys.iter().zip(&series) {
                    f.push(*k, s.clone());
                }
                w.write(&f).await?;
                w.commit().await?;
            }
            w.close().await?;
            Ok(t.elapsed().as_secs_f64())
        })
    })
    .py()
}
