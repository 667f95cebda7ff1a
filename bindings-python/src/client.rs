//! The client: `open(path)` (embedded) and `connect(url, ...)` (remote) give the same API.

use std::collections::BTreeMap;
use std::future::Future;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use telemetron::channel::ChannelKey;
use telemetron::control::Authority;
use telemetron::framer::{IteratorConfig, WriterConfig};
use telemetron::ranger::{NewRange, RangeQuery};
use telemetron::relay::StreamerConfig;
use telemetron::storage::Durability;
use telemetron::telem::{Reduction, TimeRange, TimeStamp};
use telemetron::{ConnectOptions, Credentials};

use crate::channel::{ChanMap, PyChannel, channel_refs, new_channel};
use crate::control::state_to_py;
use crate::error::{IntoPyResult, invalid};
use crate::framer::{Iterator, Writer, writer_mode};
use crate::ranger::{range_key, range_to_py, ranges_to_py};
use crate::relay::{Streamer, lag_policy};
use crate::runtime::runtime;
use crate::telem::{NativeFrame, frame_from_py};

/// A connection to an engine: embedded (`open`) or remote (`connect`). Wrapped by the
/// Python `telemetron.Client`.
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct Client {
    pub(crate) inner: telemetron::Client,
    /// The flows of the engine (embedded: run in this process) or node.
    flows: telemetron::flow::Flows,
    /// The instrumentation of the engine (embedded: an observer in this process) or node.
    observe: telemetron::observe::Observe,
    /// Set by `close`: later calls fail with `engine.closed` on both backends.
    closed: std::sync::atomic::AtomicBool,
}

impl Client {
    /// Run a client future with the GIL released.
    /// Run a call on the runtime, with this thread's trace context ([`set_traceparent`]).
    fn run<T, Fut>(&self, py: Python<'_>, f: impl FnOnce(telemetron::Client) -> Fut + Send) -> PyResult<T>
    where
        Fut: Future<Output = telemetron::Result<T>>,
        T: Send,
    {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(crate::error::to_py(telemetron::Error::Closed { what: "the client".into() }));
        }
        let c = self.inner.clone();
        let tp = TRACEPARENT.with(|t| t.borrow().clone());
        py.detach(move || runtime().block_on(telemetron::client::with_traceparent(tp, f(c)))).py()
    }

    fn new(inner: telemetron::Client) -> Client {
        let flows = telemetron::flow::Flows::new(&inner);
        let observe = telemetron::observe::Observe::new(&inner);
        Client { inner, flows, observe, closed: std::sync::atomic::AtomicBool::new(false) }
    }
}

/// Parse a durability name.
fn parse_durability(d: &str) -> PyResult<Durability> {
    d.parse::<Durability>().map_err(invalid)
}

fn range(start: i64, end: i64) -> TimeRange {
    TimeRange::from_nanos(start, end)
}

/// The reduction a call asked for (`points=None`: none).
fn reduction(points: Option<u64>, method: Option<&str>) -> PyResult<Option<Reduction>> {
    points.map(|p| Reduction::from_parts(p, method).map_err(crate::error::invalid)).transpose()
}

#[pymethods]
impl Client {
    /// Open (or create) an embedded engine on the data directory `path`, with the default
    /// durability `"none"`, `"interval"` (the default) or `"commit"`.
    #[staticmethod]
    #[pyo3(signature = (path, durability=None))]
    fn open(py: Python<'_>, path: std::path::PathBuf, durability: Option<&str>) -> PyResult<Client> {
        let mut options = telemetron::Options::default();
        if let Some(d) = durability {
            options.storage.durability = parse_durability(d)?;
        }
        let inner = py.detach(|| telemetron::open_with(&path, options)).py()?;
        Ok(Client::new(inner))
    }

    /// Connect to a remote node (`telemetron serve`) at `url`.
    #[staticmethod]
    #[pyo3(signature = (url, token=None, username=None, password=None, ca_cert=None, timeout=10.0, compress=false))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        py: Python<'_>,
        url: String,
        token: Option<String>,
        username: Option<String>,
        password: Option<String>,
        ca_cert: Option<std::path::PathBuf>,
        timeout: f64,
        compress: bool,
    ) -> PyResult<Client> {
        let credentials = match (token, username, password) {
            (Some(token), None, None) => Credentials::Token { token },
            (None, Some(username), password) => Credentials::Password { username, password: password.unwrap_or_default() },
            (None, None, None) => Credentials::None,
            _ => return Err(invalid("pass either token= or username=/password=, not both")),
        };
        if !(timeout > 0.0 && timeout.is_finite()) {
            return Err(invalid(format!("timeout must be a positive number of seconds, not {timeout}")));
        }
        let opts = ConnectOptions { credentials, ca_cert, timeout: std::time::Duration::from_secs_f64(timeout), compress };
        let inner = py.detach(|| runtime().block_on(telemetron::connect(&url, opts))).py()?;
        Ok(Client::new(inner))
    }

    /// True for a client connected to a remote node.
    #[getter]
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    /// Create channels from dicts (`name`, `data_type`, `is_index`, `index`, `virtual`,
    /// `concurrency`); all or none. `place`: the cluster node to store them on.
    #[pyo3(signature = (channels, retrieve_if_name_exists, place=None))]
    fn create_channels(
        &self,
        py: Python<'_>,
        channels: Vec<Bound<'_, PyDict>>,
        retrieve_if_name_exists: bool,
        place: Option<String>,
    ) -> PyResult<Vec<PyChannel>> {
        let batch = channels.iter().map(new_channel).collect::<PyResult<Vec<_>>>()?;
        let out = self.run(py, move |c| async move {
            match place {
                Some(node) => c.create_channels_on(&node, batch, retrieve_if_name_exists).await,
                None => c.create_channels(batch, retrieve_if_name_exists).await,
            }
        })?;
        Ok(out.into_iter().map(|inner| PyChannel { inner }).collect())
    }

    /// Channels by key or name, in order.
    fn channels(&self, py: Python<'_>, refs: &Bound<'_, PyAny>) -> PyResult<Vec<PyChannel>> {
        let refs = channel_refs(refs)?;
        let out = self.run(py, move |c| async move { c.channels(&refs).await })?;
        Ok(out.into_iter().map(|inner| PyChannel { inner }).collect())
    }

    /// User channels whose name contains `term` (case-insensitive).
    fn search_channels(&self, py: Python<'_>, term: String) -> PyResult<Vec<PyChannel>> {
        let out = self.run(py, move |c| async move { c.search_channels(&term).await })?;
        Ok(out.into_iter().map(|inner| PyChannel { inner }).collect())
    }

    /// Rename a channel.
    fn rename_channel(&self, py: Python<'_>, channel: &Bound<'_, PyAny>, name: String) -> PyResult<PyChannel> {
        let r = channel_refs(channel)?;
        let inner = self.run(py, move |c| async move {
            let ch = c.channels(&r).await?;
            c.rename_channel(ch[0].key, &name).await
        })?;
        Ok(PyChannel { inner })
    }

    /// Change how compaction stores a channel's samples.
    fn set_channel_compression(&self, py: Python<'_>, channel: &Bound<'_, PyAny>, compression: String) -> PyResult<PyChannel> {
        let r = channel_refs(channel)?;
        let choice: telemetron::channel::Compression = compression.parse().map_err(crate::error::invalid)?;
        let inner = self.run(py, move |c| async move {
            let ch = c.channels(&r).await?;
            c.set_channel_compression(ch[0].key, choice).await
        })?;
        Ok(PyChannel { inner })
    }

    /// Delete channels and their data.
    fn delete_channels(&self, py: Python<'_>, channels: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = channel_refs(channels)?;
        self.run(py, move |c| async move {
            let keys: Vec<ChannelKey> = c.channels(&r).await?.iter().map(|c| c.key).collect();
            c.delete_channels(&keys).await
        })
    }

    /// Read `[start, end)` of channels; with `include_index`, their index channels too;
    /// with `points`, reduced on the node to at most that many points per channel.
    #[pyo3(signature = (start, end, channels, include_index, points=None, method=None))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        py: Python<'_>,
        start: i64,
        end: i64,
        channels: &Bound<'_, PyAny>,
        include_index: bool,
        points: Option<u64>,
        method: Option<&str>,
    ) -> PyResult<NativeFrame> {
        let r = channel_refs(channels)?;
        let reduce = reduction(points, method)?;
        let (frame, chans) = self.run(py, move |c| async move {
            let mut chans = c.channels(&r).await?;
            if include_index {
                chans = c.with_index_channels(chans).await?;
            }
            let keys: Vec<ChannelKey> = chans.iter().map(|c| c.key).collect();
            let frame = match reduce {
                Some(red) => c.read_reduced(range(start, end), &keys, red).await?,
                None => c.read(range(start, end), &keys).await?,
            };
            Ok((frame, chans))
        })?;
        Ok(NativeFrame { frame, chans: ChanMap::new(chans), complete: true })
    }

    /// The last `n` samples of channels and their index channels (an empty frame if they
    /// hold no data).
    fn read_latest(&self, py: Python<'_>, channels: &Bound<'_, PyAny>, n: u64) -> PyResult<NativeFrame> {
        let r = channel_refs(channels)?;
        let (frame, chans) = self.run(py, move |c| async move {
            let chans = c.with_index_channels(c.channels(&r).await?).await?;
            let keys: Vec<ChannelKey> = chans.iter().map(|c| c.key).collect();
            Ok((c.read_latest(&keys, n).await?, chans))
        })?;
        Ok(NativeFrame { frame, chans: ChanMap::new(chans), complete: true })
    }

    /// Write `{channel: values}` starting at `start` and commit; returns the committed end.
    fn write(&self, py: Python<'_>, start: i64, data: &Bound<'_, PyDict>) -> PyResult<i64> {
        let refs = channel_refs(&data.keys())?;
        let chans = self.run(py, move |c| async move { c.channels(&refs).await })?;
        let mut it = chans.into_iter();
        let frame = frame_from_py(py, data, |_| it.next().ok_or_else(|| invalid("channel list changed while writing")))?;
        Ok(self.run(py, move |c| async move { c.write(TimeStamp(start), frame).await })?.0)
    }

    /// Delete `[start, end)` of channels.
    fn delete(&self, py: Python<'_>, start: i64, end: i64, channels: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = channel_refs(channels)?;
        self.run(py, move |c| async move {
            let keys: Vec<ChannelKey> = c.channels(&r).await?.iter().map(|c| c.key).collect();
            c.delete(range(start, end), &keys).await
        })
    }

    /// Export channels over `[start, end)` to a Parquet or CSV file in bounded memory
    /// (`Client::export`). `progress(rows, bytes, fraction, elapsed)` is called after each
    /// chunk with the GIL held; an exception it raises (or Ctrl-C) cancels the export,
    /// leaves no partial file, and is re-raised.
    #[pyo3(signature = (path, start, end, channels, format=None, memory_budget=64 << 20, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn export<'py>(
        &self,
        py: Python<'py>,
        path: std::path::PathBuf,
        start: i64,
        end: i64,
        channels: &Bound<'py, PyAny>,
        format: Option<&str>,
        memory_budget: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        use telemetron::client::export::{ExportConfig, ExportFormat};
        let mut config = ExportConfig::new(path, channel_refs(channels)?, range(start, end));
        config.format = format.map(str::parse::<ExportFormat>).transpose().map_err(crate::error::to_py)?;
        config.memory_budget = memory_budget;
        let raised: std::sync::Arc<parking_lot::Mutex<Option<PyErr>>> = Default::default();
        let slot = raised.clone();
        let result = self.run(py, move |c| async move {
            let mut report = move |p: &telemetron::client::export::ExportProgress| {
                Python::attach(|py| {
                    let r = py.check_signals().and_then(|()| match &progress {
                        Some(cb) => cb.call1(py, (p.rows, p.bytes, p.fraction, p.elapsed)).map(drop),
                        None => Ok(()),
                    });
                    r.map_err(|e| {
                        *slot.lock() = Some(e);
                        telemetron::Error::InvalidArgument { reason: "export cancelled by the progress callback".into() }
                    })
                })
            };
            c.export(config, &mut report).await
        });
        if let Some(e) = raised.lock().take() {
            return Err(e);
        }
        let r = result?;
        let d = PyDict::new(py);
        d.set_item("path", r.path)?;
        d.set_item("format", if r.format == ExportFormat::Parquet { "parquet" } else { "csv" })?;
        d.set_item("columns", r.columns)?;
        d.set_item("rows", r.rows)?;
        d.set_item("bytes", r.bytes)?;
        d.set_item("file_bytes", r.file_bytes)?;
        Ok(d)
    }

    /// `(start, end)` in ns stored for a channel, or None.
    fn time_range(&self, py: Python<'_>, channel: &Bound<'_, PyAny>) -> PyResult<Option<(i64, i64)>> {
        let r = channel_refs(channel)?;
        let tr = self.run(py, move |c| async move {
            let ch = c.channels(&r).await?;
            c.time_range(ch[0].key).await
        })?;
        Ok(tr.map(|t| (t.start.0, t.end.0)))
    }

    /// Open a writer.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (start, channels, authorities, mode, name, err_on_unauthorized, auto_commit, auto_commit_interval=None, end=None, subject_key=None, durability=None))]
    fn open_writer(
        &self,
        py: Python<'_>,
        start: i64,
        channels: &Bound<'_, PyAny>,
        authorities: Vec<Authority>,
        mode: &str,
        name: String,
        err_on_unauthorized: bool,
        auto_commit: bool,
        auto_commit_interval: Option<i64>,
        end: Option<i64>,
        subject_key: Option<String>,
        durability: Option<&str>,
    ) -> PyResult<Writer> {
        let r = channel_refs(channels)?;
        let mode = writer_mode(mode)?;
        let durability = durability.map(parse_durability).transpose()?;
        let (w, chans) = self.run(py, move |c| async move {
            let chans = c.channels(&r).await?;
            let mut cfg = WriterConfig::new(TimeStamp(start), chans.iter().map(|c| c.key).collect())
                .mode(mode)
                .name(name)
                .err_on_unauthorized(err_on_unauthorized)
                .auto_commit(auto_commit);
            cfg.authorities = authorities;
            if let Some(k) = subject_key {
                cfg.subject.key = k;
            }
            cfg.durability = durability;
            if let Some(ns) = auto_commit_interval {
                cfg = cfg.auto_commit_interval(std::time::Duration::from_nanos(ns.max(0) as u64));
            }
            if let Some(e) = end {
                cfg = cfg.end(TimeStamp(e));
            }
            let w = c.open_writer(cfg).await?;
            Ok((w, c.with_index_channels(chans).await?))
        })?;
        Ok(Writer::new(w, ChanMap::new(chans)))
    }

    /// Open a streamer.
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
    #[pyo3(signature = (channels, capacity, lag_policy, decimate, throttle_hz, spin_us = 0))]
    fn open_streamer(
        &self,
        py: Python<'_>,
        channels: &Bound<'_, PyAny>,
        capacity: usize,
        lag_policy: &str,
        decimate: u32,
        throttle_hz: f64,
        spin_us: u64,
    ) -> PyResult<Streamer> {
        let r = channel_refs(channels)?;
        let lp = self::lag_policy(lag_policy)?;
        let (s, chans) = self.run(py, move |c| async move {
            let chans = c.channels(&r).await?;
            let cfg = StreamerConfig {
                channels: chans.iter().map(|c| c.key).collect(),
                capacity: capacity.max(1),
                lag_policy: lp,
                decimate: decimate.max(1),
                throttle_hz,
                spin_us,
            };
            Ok((c.open_streamer(cfg).await?, chans))
        })?;
        Ok(Streamer::new(s, ChanMap::new(chans), self.inner.clone()))
    }

    /// Watch changes to channels and ranges from now on.
    fn watch_changes(&self, py: Python<'_>) -> PyResult<crate::changes::ChangeWatcher> {
        let w = self.run(py, |c| async move { c.watch_changes().await })?;
        Ok(crate::changes::ChangeWatcher::new(w))
    }

    /// Open an iterator over `[start, end)`; with `points`, each chunk is reduced.
    #[pyo3(signature = (start, end, channels, chunk_size, include_index, points=None, method=None))]
    #[allow(clippy::too_many_arguments)]
    fn open_iterator(
        &self,
        py: Python<'_>,
        start: i64,
        end: i64,
        channels: &Bound<'_, PyAny>,
        chunk_size: u64,
        include_index: bool,
        points: Option<u64>,
        method: Option<&str>,
    ) -> PyResult<Iterator> {
        let r = channel_refs(channels)?;
        let reduce = reduction(points, method)?;
        let (it, chans) = self.run(py, move |c| async move {
            let mut chans = c.channels(&r).await?;
            if include_index {
                chans = c.with_index_channels(chans).await?;
            }
            let cfg = IteratorConfig {
                bounds: range(start, end),
                channels: chans.iter().map(|c| c.key).collect(),
                chunk_size: chunk_size.max(1),
                reduce,
            };
            Ok((c.open_iterator(cfg).await?, chans))
        })?;
        Ok(Iterator::new(it, ChanMap::new(chans)))
    }

    /// Create a range; returns it as a dict.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, start, end, labels, color, meta_data, parent=None))]
    fn create_range<'py>(
        &self,
        py: Python<'py>,
        name: String,
        start: i64,
        end: i64,
        labels: Vec<String>,
        color: Option<String>,
        meta_data: BTreeMap<String, String>,
        parent: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let parent = parent.map(range_key).transpose()?;
        let nr = NewRange { name, time_range: range(start, end), labels, color, meta_data, parent };
        let r = self.run(py, move |c| async move { c.create_range(nr).await })?;
        range_to_py(py, &r)
    }

    /// A range by key.
    fn range<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyDict>> {
        let k = range_key(key)?;
        let r = self.run(py, move |c| async move { c.range(k).await })?;
        range_to_py(py, &r)
    }

    /// Ranges matching every filter ([`RangeQuery`]): `term` (name, label or metadata
    /// value), overlapping `(start, end)`, all of `labels`, exact `meta_data`, and `parent`.
    #[pyo3(signature = (term, overlapping=None, labels=None, meta_data=None, parent=None))]
    fn search_ranges<'py>(
        &self,
        py: Python<'py>,
        term: String,
        overlapping: Option<(i64, i64)>,
        labels: Option<Vec<String>>,
        meta_data: Option<BTreeMap<String, String>>,
        parent: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let q = RangeQuery {
            term,
            overlapping: overlapping.map(|(s, e)| range(s, e)),
            labels: labels.unwrap_or_default(),
            meta_data: meta_data.unwrap_or_default(),
            parent: parent.map(range_key).transpose()?,
        };
        let rs = self.run(py, move |c| async move { c.query_ranges(&q).await })?;
        ranges_to_py(py, &rs)
    }

    /// The direct children of a range.
    fn range_children<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyList>> {
        let k = range_key(key)?;
        let rs = self.run(py, move |c| async move { c.range_children(k).await })?;
        ranges_to_py(py, &rs)
    }

    /// Replace a range's labels; returns the range.
    fn set_range_labels<'py>(&self, py: Python<'py>, key: &str, labels: Vec<String>) -> PyResult<Bound<'py, PyDict>> {
        let k = range_key(key)?;
        let r = self.run(py, move |c| async move { c.set_range_labels(k, labels).await })?;
        range_to_py(py, &r)
    }

    /// Rename a range.
    fn rename_range<'py>(&self, py: Python<'py>, key: &str, name: String) -> PyResult<Bound<'py, PyDict>> {
        let k = range_key(key)?;
        let r = self.run(py, move |c| async move { c.rename_range(k, &name).await })?;
        range_to_py(py, &r)
    }

    /// Delete ranges.
    fn delete_ranges(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<()> {
        let ks = keys.iter().map(|k| range_key(k)).collect::<PyResult<Vec<_>>>()?;
        self.run(py, move |c| async move { c.delete_ranges(&ks).await })
    }

    /// A range's metadata.
    fn range_meta(&self, py: Python<'_>, key: &str) -> PyResult<BTreeMap<String, String>> {
        let k = range_key(key)?;
        self.run(py, move |c| async move { c.range_meta(k).await })
    }

    /// Set metadata entries of a range.
    fn set_range_meta(&self, py: Python<'_>, key: &str, entries: BTreeMap<String, String>) -> PyResult<()> {
        let k = range_key(key)?;
        self.run(py, move |c| async move { c.set_range_meta(k, entries).await })
    }

    /// Remove metadata entries of a range.
    fn delete_range_meta(&self, py: Python<'_>, key: &str, names: Vec<String>) -> PyResult<()> {
        let k = range_key(key)?;
        self.run(py, move |c| async move { c.delete_range_meta(k, &names).await })
    }

    /// Current control holders of channels (all controlled channels if empty).
    fn control_states<'py>(&self, py: Python<'py>, channels: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let r = channel_refs(channels)?;
        let states = self.run(py, move |c| async move {
            let keys: Vec<ChannelKey> = if r.is_empty() { Vec::new() } else { c.channels(&r).await?.iter().map(|c| c.key).collect() };
            c.control_states(&keys).await
        })?;
        let out = PyList::empty(py);
        for s in &states {
            out.append(state_to_py(py, s)?)?;
        }
        Ok(out)
    }

    /// Key of the control-state channel.
    fn control_channel(&self, py: Python<'_>) -> PyResult<ChannelKey> {
        self.run(py, |c| async move { c.control_channel().await })
    }

    /// Start a control sequence (`client.control.acquire`).
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
    #[pyo3(signature = (name, write, read, authorities, raise_on_lost, on_lost, safe, record))]
    fn acquire(
        &self,
        py: Python<'_>,
        name: String,
        write: &Bound<'_, PyAny>,
        read: &Bound<'_, PyAny>,
        authorities: Vec<Authority>,
        raise_on_lost: bool,
        on_lost: Option<Py<PyAny>>,
        safe: Option<&Bound<'_, PyDict>>,
        record: bool,
    ) -> PyResult<crate::sequence::Sequence> {
        let mut cfg = telemetron::client::SequenceConfig::new(name);
        cfg.write = channel_refs(write)?;
        cfg.read = channel_refs(read)?;
        cfg.authorities = authorities;
        cfg.raise_on_lost = raise_on_lost;
        cfg.record = record;
        cfg.on_lost = on_lost.map(crate::sequence::lost_hook);
        if let Some(safe) = safe {
            cfg.safe = crate::sequence::safe_values(py, &self.inner, safe)?;
        }
        let seq = self.run(py, move |c| async move { c.acquire(cfg).await })?;
        Ok(seq.into())
    }

    /// Close the client (an embedded engine releases its directory). Later calls raise
    /// `Closed`; closing twice is a no-op.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let flows = self.flows.clone();
        self.run(py, |c| async move {
            flows.shutdown(telemetron::flow::DEFAULT_DRAIN).await;
            c.close().await
        })?;
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    // ---- flows (`client.flows`; the Python layer turns the JSON into dataclasses) ----

    /// Every flow, as JSON (a list of `FlowInfo`).
    fn flows_list(&self, py: Python<'_>) -> PyResult<String> {
        let f = self.flows.clone();
        json(self.run(py, |_| async move { f.list().await })?)
    }

    /// One flow, as JSON.
    fn flows_get(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let f = self.flows.clone();
        json(self.run(py, |_| async move { f.get(&name).await })?)
    }

    /// Deploy a flow file's text; the new flow as JSON.
    fn flows_deploy(&self, py: Python<'_>, config: String) -> PyResult<String> {
        let f = self.flows.clone();
        json(self.run(py, |_| async move { f.deploy(&config).await })?)
    }

    /// Reconfigure a flow; the `Reconfigured` reply as JSON.
    #[pyo3(signature = (name, config, drain=None))]
    fn flows_reconfigure(&self, py: Python<'_>, name: String, config: String, drain: Option<f64>) -> PyResult<String> {
        let (f, drain) = (self.flows.clone(), telemetron::flow::drain_seconds(drain).py()?);
        json(self.run(py, |_| async move { f.reconfigure(&name, &config, drain).await })?)
    }

    /// Stop a flow; its final state as JSON.
    #[pyo3(signature = (name, drain=None))]
    fn flows_stop(&self, py: Python<'_>, name: String, drain: Option<f64>) -> PyResult<String> {
        let (f, drain) = (self.flows.clone(), telemetron::flow::drain_seconds(drain).py()?);
        json(self.run(py, |_| async move { f.stop(&name, drain).await })?)
    }

    // ---- instrumentation (`client.observe`) ----

    /// The levels in force: `(logs, metrics, traces)`.
    fn observe_levels(&self, py: Python<'_>) -> PyResult<(String, String, String)> {
        let o = self.observe.clone();
        let l = self.run(py, |_| async move { o.levels().await })?;
        Ok((l.logs.to_string(), l.metrics.to_string(), l.traces.to_string()))
    }

    /// Change some levels (names `off`, `basic`, `detailed`); the levels now in force.
    #[pyo3(signature = (logs=None, metrics=None, traces=None))]
    fn observe_set_levels(
        &self,
        py: Python<'_>,
        logs: Option<String>,
        metrics: Option<String>,
        traces: Option<String>,
    ) -> PyResult<(String, String, String)> {
        let update = telemetron::observe::LevelsUpdate::parse(logs.as_deref(), metrics.as_deref(), traces.as_deref()).py()?;
        let o = self.observe.clone();
        let l = self.run(py, |_| async move { o.set_levels(update).await })?;
        Ok((l.logs.to_string(), l.metrics.to_string(), l.traces.to_string()))
    }

    /// Every scalar metric now, as `(name, value)` pairs sorted by name.
    fn observe_metrics(&self, py: Python<'_>) -> PyResult<Vec<(String, f64)>> {
        let o = self.observe.clone();
        Ok(self.run(py, |_| async move { o.metrics().await })?.samples)
    }

    /// The self-telemetry history over a window, summarized by the node (or, embedded,
    /// here), as JSON: `window` is a duration text (`30s`, `5m`, or seconds).
    #[pyo3(signature = (window=None, end=None, filter=None))]
    fn observe_summary(&self, py: Python<'_>, window: Option<String>, end: Option<i64>, filter: Option<String>) -> PyResult<String> {
        let req = telemetron::observe::SummaryRequest::parse(window.as_deref(), end, filter).py()?;
        let o = self.observe.clone();
        json(self.run(py, |_| async move { o.summary(&req).await })?)
    }
}

fn json(v: impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(&v).map_err(|e| invalid(format!("cannot encode the reply: {e}")))
}

thread_local! {
    /// The caller's W3C trace context for the next calls on this thread (Python threads are
    /// OS threads): set by the Python `Client` around each call it traces.
    static TRACEPARENT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Set (or clear, with `None`) the `traceparent` that this thread's client calls carry.
#[pyfunction]
#[pyo3(signature = (traceparent=None))]
pub fn set_traceparent(traceparent: Option<String>) {
    TRACEPARENT.with(|t| *t.borrow_mut() = traceparent);
}
