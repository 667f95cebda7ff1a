//! `client`: the one client type over an embedded engine (`open`) or a remote node
//! (`connect`). Every method returns a Promise and behaves the same on both backends.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::channel::Channel;
use telemetron::{ConnectOptions, Credentials};

use crate::channel::{ChannelJs, NewChannelJs, channel_refs};
use crate::control::StateJs;
use crate::error::{IntoNapi, invalid};
use crate::flow::{FlowInfoJs, ReconfiguredJs};
use crate::framer::{Iterator, IteratorOptionsJs, Writer, WriterChannels, WriterOptionsJs};
use crate::ranger::{NewRangeJs, RangeJs, RangeQueryJs, range_key};
use crate::relay::{Streamer, StreamerOptionsJs, streamer_config};
use crate::telem::{FrameJs, TimeRangeJs, big, columns, frame, reduction, timestamp};

/// Options of `Client.export`.
#[napi(object)]
#[derive(Default)]
pub struct ExportOptionsJs {
    /// `parquet` or `csv` (default: from the path's extension).
    pub format: Option<String>,
    /// Bytes of data in flight (default 64 MiB).
    pub memory_budget: Option<f64>,
}

/// Progress of an export, after each chunk written.
#[napi(object)]
pub struct ExportProgress {
    /// Rows written so far.
    pub rows: f64,
    /// Sample bytes read so far.
    pub bytes: f64,
    /// How far through the range's data, 0 to 1 (by time).
    pub fraction: f64,
    /// Seconds since the export started.
    pub elapsed: f64,
}

/// What an export wrote.
#[napi(object)]
pub struct ExportReport {
    /// The file written.
    pub path: String,
    /// `parquet` or `csv`.
    pub format: String,
    /// Column names, the index first.
    pub columns: Vec<String>,
    /// Rows written.
    pub rows: f64,
    /// Sample bytes read.
    pub bytes: f64,
    /// Size of the file.
    pub file_bytes: f64,
}

/// A Telemetron client.
#[napi]
pub struct Client {
    inner: telemetron::Client,
    /// The flows of the engine (embedded: run in this process) or node.
    flows: telemetron::flow::Flows,
    /// The instrumentation of the engine (embedded: an observer in this process) or node.
    observe: telemetron::observe::Observe,
}

impl Client {
    fn new(inner: telemetron::Client) -> Client {
        Client { flows: telemetron::flow::Flows::new(&inner), observe: telemetron::observe::Observe::new(&inner), inner }
    }
}

/// Instrumentation levels: each `off`, `basic` or `detailed`.
#[napi(object)]
pub struct LevelsJs {
    /// What the node logs.
    pub logs: String,
    /// What the node measures.
    pub metrics: String,
    /// What the node traces.
    pub traces: String,
}

impl LevelsJs {
    fn from_core(l: telemetron::observe::Levels) -> LevelsJs {
        LevelsJs { logs: l.logs.to_string(), metrics: l.metrics.to_string(), traces: l.traces.to_string() }
    }
}

/// One self-telemetry series over a window (`telemetron::observe::SeriesSummary`).
#[napi(object)]
pub struct SeriesSummaryJs {
    pub name: String,
    /// `counter`, `gauge`, `histogram` or `unknown`.
    pub kind: String,
    pub unit: String,
    pub points: i64,
    pub first_time: BigInt,
    pub last_time: BigInt,
    pub last: f64,
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    pub increase: Option<f64>,
    pub rate: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// The self-telemetry history over `[start, end]` (`telemetron::observe::Summary`).
#[napi(object)]
pub struct SummaryJs {
    pub start: BigInt,
    pub end: BigInt,
    pub series: Vec<SeriesSummaryJs>,
}

impl SummaryJs {
    fn from_core(s: telemetron::observe::Summary) -> SummaryJs {
        let series = s
            .series
            .into_iter()
            .map(|x| SeriesSummaryJs {
                name: x.name,
                kind: x.kind.to_string(),
                unit: x.unit,
                points: x.points as i64,
                first_time: big(x.first_time),
                last_time: big(x.last_time),
                last: x.last,
                min: x.min,
                mean: x.mean,
                max: x.max,
                increase: x.increase,
                rate: x.rate,
                p50: x.p50,
                p90: x.p90,
                p99: x.p99,
            })
            .collect();
        SummaryJs { start: big(s.start), end: big(s.end), series }
    }
}

/// Open (or create) an embedded engine in `path` and return a client over it.
#[napi]
pub async fn open(path: String, options: Option<OpenOptionsJs>) -> Result<Client> {
    let mut o = telemetron::Options::default();
    if let Some(d) = options.and_then(|o| o.durability) {
        o.storage.durability = d.parse::<telemetron::storage::Durability>().map_err(invalid)?;
    }
    let c = tokio::task::spawn_blocking(move || telemetron::open_with(path, o))
        .await
        .map_err(|e| invalid(format!("opening the engine failed: {e}")))?
        .js()?;
    Ok(Client::new(c))
}

/// How to open an embedded engine.
#[napi(object)]
pub struct OpenOptionsJs {
    /// The engine's default durability: `"none"`, `"interval"` (the default: a background
    /// sync every second) or `"commit"` (`fdatasync` before every commit returns).
    pub durability: Option<String>,
}

/// How to connect to a remote node.
#[napi(object)]
pub struct ConnectOptionsJs {
    /// A bearer token.
    pub token: Option<String>,
    /// User name (with `password`).
    pub username: Option<String>,
    /// Password (with `username`).
    pub password: Option<String>,
    /// PEM file of a CA certificate to trust (`https` with a private CA).
    pub ca_cert: Option<String>,
    /// Give up connecting after this long (ms; default 10 s).
    pub timeout_ms: Option<f64>,
    /// Ask the node to compress the frames it sends back where that pays (reads, iterator
    /// steps, streamed frames); for links slower than loopback or a fast LAN. Default false.
    pub compress: Option<bool>,
}

impl ConnectOptionsJs {
    fn to_core(&self) -> Result<ConnectOptions> {
        let credentials = match (&self.token, &self.username, &self.password) {
            (Some(t), None, None) => Credentials::Token { token: t.clone() },
            (None, Some(u), Some(p)) => Credentials::Password { username: u.clone(), password: p.clone() },
            (None, None, None) => Credentials::None,
            _ => return Err(invalid("pass either a token, or a username and a password")),
        };
        let mut o = ConnectOptions {
            credentials,
            ca_cert: self.ca_cert.as_ref().map(PathBuf::from),
            compress: self.compress.unwrap_or(false),
            ..ConnectOptions::default()
        };
        if let Some(ms) = self.timeout_ms {
            if !(ms.is_finite() && ms > 0.0) {
                return Err(invalid(format!("timeoutMs {ms} must be a positive number")));
            }
            o.timeout = Duration::from_secs_f64(ms / 1000.0);
        }
        Ok(o)
    }
}

/// Connect to a `telemetron serve` node at `url` (`http://host:port`, `https://` for TLS).
#[napi]
pub async fn connect(url: String, options: Option<ConnectOptionsJs>) -> Result<Client> {
    let opts = match &options {
        Some(o) => o.to_core()?,
        None => ConnectOptions::default(),
    };
    Ok(Client::new(telemetron::connect(&url, opts).await.js()?))
}

impl Client {
    async fn resolve(&self, refs: &[Either<u32, String>]) -> Result<Vec<Channel>> {
        self.inner.channels(&channel_refs(refs)).await.js()
    }
}

#[napi]
impl Client {
    /// True when connected to a remote node.
    #[napi(getter, catch_unwind)]
    pub fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    /// Create channels (all or none); `place`: the cluster node to store them on.
    #[napi]
    pub async fn create_channels(
        &self,
        channels: Vec<NewChannelJs>,
        retrieve_if_name_exists: Option<bool>,
        place: Option<String>,
    ) -> Result<Vec<ChannelJs>> {
        let batch = channels.iter().map(NewChannelJs::to_core).collect::<Result<Vec<_>>>()?;
        let retrieve = retrieve_if_name_exists.unwrap_or(false);
        let out = match place {
            Some(node) => self.inner.create_channels_on(&node, batch, retrieve).await,
            None => self.inner.create_channels(batch, retrieve).await,
        }
        .js()?;
        Ok(out.iter().map(ChannelJs::from_core).collect())
    }

    /// Channels by key or name, in order.
    #[napi]
    pub async fn retrieve_channels(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
    ) -> Result<Vec<ChannelJs>> {
        Ok(self.resolve(&refs).await?.iter().map(ChannelJs::from_core).collect())
    }

    /// User channels whose name contains `term` (all with `""`).
    #[napi]
    pub async fn search_channels(&self, term: String) -> Result<Vec<ChannelJs>> {
        Ok(self.inner.search_channels(&term).await.js()?.iter().map(ChannelJs::from_core).collect())
    }

    /// Rename a channel.
    #[napi]
    pub async fn rename_channel(
        &self,
        #[napi(ts_arg_type = "number | string")] channel: Either<u32, String>,
        name: String,
    ) -> Result<ChannelJs> {
        let key = self.resolve(std::slice::from_ref(&channel)).await?[0].key;
        Ok(ChannelJs::from_core(&self.inner.rename_channel(key, &name).await.js()?))
    }

    /// Change how compaction stores a channel's samples (`default`, `off`, `pcodec`, `zstd`,
    /// `lz4`); what is stored follows at the next compaction pass.
    #[napi]
    pub async fn set_channel_compression(
        &self,
        #[napi(ts_arg_type = "number | string")] channel: Either<u32, String>,
        compression: String,
    ) -> Result<ChannelJs> {
        let choice: telemetron::channel::Compression = compression.parse().map_err(invalid)?;
        let key = self.resolve(std::slice::from_ref(&channel)).await?[0].key;
        Ok(ChannelJs::from_core(&self.inner.set_channel_compression(key, choice).await.js()?))
    }

    /// Delete channels and their data.
    #[napi]
    pub async fn delete_channels(&self, #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>) -> Result<()> {
        let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
        self.inner.delete_channels(&keys).await.js()
    }

    /// Write one frame (parallel arrays of channels and samples) starting at `start` and
    /// commit it; resolves to the committed end (ns).
    #[napi(catch_unwind, ts_return_type = "Promise<bigint>")]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        start: BigInt,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        #[napi(ts_arg_type = "Array<unknown>")] values: Vec<Unknown>,
        traceparent: Option<String>,
    ) -> Result<PromiseRaw<'env, BigInt>> {
        if channels.len() != values.len() {
            return Err(invalid("pass one value per channel"));
        }
        let start = timestamp(&start)?;
        let cols = columns(&values)?;
        let inner = self.inner.clone();
        // As `Writer::write`: the frame is dropped on the JS thread.
        env.spawn_future_with_callback(
            telemetron::client::with_traceparent(traceparent, async move {
                let chans = inner.channels(&channel_refs(&channels)).await.js()?;
                let f = frame(&chans.iter().collect::<Vec<_>>(), cols)?;
                let end = inner.write(start, f.clone()).await.js()?;
                Ok((big(end.0), f))
            }),
            |_, (end, f)| {
                drop(f);
                Ok(end)
            },
        )
    }

    /// Export channels of one index over `range` to a Parquet or CSV file in bounded memory
    /// (`Client::export` in the core); `onProgress` receives an `ExportProgress` after each
    /// chunk. The file appears only when complete.
    #[napi(ts_return_type = "Promise<ExportReport>")]
    pub async fn export(
        &self,
        path: String,
        #[napi(ts_arg_type = "Array<number | string>")] channels: Vec<Either<u32, String>>,
        range: TimeRangeJs,
        options: Option<ExportOptionsJs>,
        #[napi(ts_arg_type = "(p: ExportProgress) => void")] on_progress: Option<
            napi::threadsafe_function::ThreadsafeFunction<ExportProgress, (), ExportProgress, Status, false>,
        >,
    ) -> Result<ExportReport> {
        use telemetron::client::export::{ExportConfig, ExportFormat};
        let mut config = ExportConfig::new(path, channel_refs(&channels), range.to_core()?);
        let options = options.unwrap_or_default();
        config.format = options.format.as_deref().map(str::parse::<ExportFormat>).transpose().js()?;
        if let Some(m) = options.memory_budget {
            config.memory_budget = m.max(0.0) as usize;
        }
        let mut report = |p: &telemetron::client::export::ExportProgress| {
            if let Some(cb) = &on_progress {
                let p = ExportProgress { rows: p.rows as f64, bytes: p.bytes as f64, fraction: p.fraction, elapsed: p.elapsed };
                cb.call(p, napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking);
            }
            Ok(())
        };
        let r = self.inner.export(config, &mut report).await.js()?;
        Ok(ExportReport {
            path: r.path.to_string_lossy().into_owned(),
            format: if r.format == ExportFormat::Parquet { "parquet" } else { "csv" }.into(),
            columns: r.columns,
            rows: r.rows as f64,
            bytes: r.bytes as f64,
            file_bytes: r.file_bytes as f64,
        })
    }

    /// Read a time range of channels; with `points`, reduced where the data is to at most
    /// that many points per channel (`reduce`: `"minmax"` or `"average"`).
    #[napi]
    pub async fn read(
        &self,
        range: TimeRangeJs,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
        points: Option<f64>,
        reduce: Option<String>,
        traceparent: Option<String>,
    ) -> Result<FrameJs> {
        let tr = range.to_core()?;
        let red = reduction(points, reduce.as_deref())?;
        telemetron::client::with_traceparent(traceparent, async move {
            let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
            let f = match red {
                Some(r) => self.inner.read_reduced(tr, &keys, r).await,
                None => self.inner.read(tr, &keys).await,
            };
            Ok(FrameJs::from_core(f.js()?))
        })
        .await
    }

    /// The last `n` samples (at least one) of channels (an empty frame if they hold no data).
    #[napi]
    pub async fn read_latest(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
        n: u32,
        traceparent: Option<String>,
    ) -> Result<FrameJs> {
        telemetron::client::with_traceparent(traceparent, async move {
            let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
            Ok(FrameJs::from_core(self.inner.read_latest(&keys, u64::from(n)).await.js()?))
        })
        .await
    }

    /// Delete a time range of channels.
    #[napi]
    pub async fn delete_range_data(
        &self,
        range: TimeRangeJs,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
        traceparent: Option<String>,
    ) -> Result<()> {
        let tr = range.to_core()?;
        telemetron::client::with_traceparent(traceparent, async move {
            let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
            self.inner.delete(tr, &keys).await.js()
        })
        .await
    }

    /// The time range covered by a stored channel (`null` if it holds no data).
    #[napi]
    pub async fn time_range(&self, #[napi(ts_arg_type = "number | string")] channel: Either<u32, String>) -> Result<Option<TimeRangeJs>> {
        let key = self.resolve(std::slice::from_ref(&channel)).await?[0].key;
        Ok(self.inner.time_range(key).await.js()?.map(TimeRangeJs::from_core))
    }

    /// Open a writer.
    #[napi]
    pub async fn open_writer(&self, options: WriterOptionsJs, traceparent: Option<String>) -> Result<Writer> {
        telemetron::client::with_traceparent(traceparent, async move {
            let chans = self.resolve(&options.channels).await?;
            let keys: Vec<u32> = chans.iter().map(|c| c.key).collect();
            let chans = self.inner.with_index_channels(chans).await.js()?;
            let cfg = options.to_core(keys)?;
            let w = self.inner.open_writer(cfg).await.js()?;
            Ok(Writer::new(w, WriterChannels::new(chans)))
        })
        .await
    }

    /// Start a control sequence (`client.control.acquire`).
    #[napi]
    pub async fn acquire(&self, options: crate::sequence::SequenceOptionsJs) -> Result<crate::sequence::Sequence> {
        crate::sequence::acquire(self.inner.clone(), options).await
    }

    /// Open a streamer on channels (keys or names).
    #[napi]
    pub async fn open_streamer(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
        options: Option<StreamerOptionsJs>,
        traceparent: Option<String>,
    ) -> Result<Streamer> {
        telemetron::client::with_traceparent(traceparent, async move {
            let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
            let cfg = streamer_config(keys, options.as_ref())?;
            let s = self.inner.open_streamer(cfg).await.js()?;
            Ok(Streamer::new(self.inner.clone(), s))
        })
        .await
    }

    /// Open an iterator over stored channels.
    #[napi]
    pub async fn open_iterator(&self, options: IteratorOptionsJs, traceparent: Option<String>) -> Result<Iterator> {
        telemetron::client::with_traceparent(traceparent, async move {
            let keys: Vec<u32> = self.inner.channels(&options.refs()).await.js()?.iter().map(|c| c.key).collect();
            let cfg = options.to_core(keys)?;
            Ok(Iterator::new(self.inner.open_iterator(cfg).await.js()?))
        })
        .await
    }

    /// Create a range.
    #[napi]
    pub async fn create_range(&self, range: NewRangeJs) -> Result<RangeJs> {
        let r = range.to_core()?;
        Ok(RangeJs::from_core(self.inner.create_range(r).await.js()?))
    }

    /// A range by key.
    #[napi]
    pub async fn retrieve_range(&self, key: String) -> Result<RangeJs> {
        Ok(RangeJs::from_core(self.inner.range(range_key(&key)?).await.js()?))
    }

    /// Ranges matching every filter of `query` (term, overlap, labels, exact metadata, parent).
    #[napi]
    pub async fn search_ranges(&self, query: RangeQueryJs) -> Result<Vec<RangeJs>> {
        let q = query.to_core()?;
        Ok(self.inner.query_ranges(&q).await.js()?.into_iter().map(RangeJs::from_core).collect())
    }

    /// The direct children of a range.
    #[napi]
    pub async fn range_children(&self, key: String) -> Result<Vec<RangeJs>> {
        Ok(self.inner.range_children(range_key(&key)?).await.js()?.into_iter().map(RangeJs::from_core).collect())
    }

    /// Replace a range's labels.
    #[napi]
    pub async fn set_range_labels(&self, key: String, labels: Vec<String>) -> Result<RangeJs> {
        Ok(RangeJs::from_core(self.inner.set_range_labels(range_key(&key)?, labels).await.js()?))
    }

    /// Rename a range.
    #[napi]
    pub async fn rename_range(&self, key: String, name: String) -> Result<RangeJs> {
        Ok(RangeJs::from_core(self.inner.rename_range(range_key(&key)?, &name).await.js()?))
    }

    /// Delete ranges.
    #[napi]
    pub async fn delete_ranges(&self, keys: Vec<String>) -> Result<()> {
        let keys = keys.iter().map(|k| range_key(k)).collect::<Result<Vec<_>>>()?;
        self.inner.delete_ranges(&keys).await.js()
    }

    /// A range's metadata.
    #[napi]
    pub async fn range_meta(&self, key: String) -> Result<HashMap<String, String>> {
        Ok(self.inner.range_meta(range_key(&key)?).await.js()?.into_iter().collect())
    }

    /// Set metadata entries of a range.
    #[napi]
    pub async fn set_range_meta(&self, key: String, entries: HashMap<String, String>) -> Result<()> {
        let e: BTreeMap<String, String> = entries.into_iter().collect();
        self.inner.set_range_meta(range_key(&key)?, e).await.js()
    }

    /// Remove metadata entries of a range.
    #[napi]
    pub async fn delete_range_meta(&self, key: String, names: Vec<String>) -> Result<()> {
        self.inner.delete_range_meta(range_key(&key)?, &names).await.js()
    }

    /// Current control holders of channels (all when empty).
    #[napi]
    pub async fn control_states(
        &self,
        #[napi(ts_arg_type = "Array<number | string>")] refs: Vec<Either<u32, String>>,
    ) -> Result<Vec<StateJs>> {
        let keys: Vec<u32> = self.resolve(&refs).await?.iter().map(|c| c.key).collect();
        Ok(self.inner.control_states(&keys).await.js()?.into_iter().map(StateJs::from_core).collect())
    }

    /// The control-state channel's key.
    #[napi]
    pub async fn control_channel(&self) -> Result<u32> {
        self.inner.control_channel().await.js()
    }

    /// Watch changes to channels and ranges from now on.
    #[napi]
    pub async fn watch_changes(&self) -> Result<crate::changes::ChangeWatcher> {
        Ok(crate::changes::ChangeWatcher::new(self.inner.watch_changes().await.js()?))
    }

    /// Close the client (embedded: its flows are stopped, the engine is closed and its
    /// directory released).
    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.flows.shutdown(telemetron::flow::DEFAULT_DRAIN).await;
        self.inner.close().await.js()
    }

    /// Every flow with its counters.
    #[napi]
    pub async fn flows_list(&self) -> Result<Vec<FlowInfoJs>> {
        Ok(self.flows.list().await.js()?.into_iter().map(FlowInfoJs::from_core).collect())
    }

    /// One flow.
    #[napi]
    pub async fn flows_get(&self, name: String) -> Result<FlowInfoJs> {
        Ok(FlowInfoJs::from_core(self.flows.get(&name).await.js()?))
    }

    /// Deploy a flow file's text.
    #[napi]
    pub async fn flows_deploy(&self, config: String) -> Result<FlowInfoJs> {
        Ok(FlowInfoJs::from_core(self.flows.deploy(&config).await.js()?))
    }

    /// Apply a new version of a flow's file (live or by restart).
    #[napi]
    pub async fn flows_reconfigure(&self, name: String, config: String, drain: Option<f64>) -> Result<ReconfiguredJs> {
        let drain = telemetron::flow::drain_seconds(drain).js()?;
        Ok(ReconfiguredJs::from_core(self.flows.reconfigure(&name, &config, drain).await.js()?))
    }

    /// The instrumentation levels in force.
    #[napi]
    pub async fn observe_levels(&self) -> Result<LevelsJs> {
        Ok(LevelsJs::from_core(self.observe.levels().await.js()?))
    }

    /// Change some levels (names `off`, `basic`, `detailed`); the levels now in force.
    #[napi]
    pub async fn observe_set_levels(&self, logs: Option<String>, metrics: Option<String>, traces: Option<String>) -> Result<LevelsJs> {
        let update = telemetron::observe::LevelsUpdate::parse(logs.as_deref(), metrics.as_deref(), traces.as_deref()).js()?;
        Ok(LevelsJs::from_core(self.observe.set_levels(update).await.js()?))
    }

    /// Every scalar metric now, by self-telemetry channel name.
    #[napi]
    pub async fn observe_metrics(&self) -> Result<std::collections::HashMap<String, f64>> {
        Ok(self.observe.metrics().await.js()?.samples.into_iter().collect())
    }

    /// The self-telemetry history over a window, summarized by the node (or, embedded,
    /// here): `window` is a duration text (`30s`, `5m`, or seconds).
    #[napi]
    pub async fn observe_summary(&self, window: Option<String>, end: Option<BigInt>, filter: Option<String>) -> Result<SummaryJs> {
        let end = end.map(|e| timestamp(&e).map(|t| t.0)).transpose()?;
        let req = telemetron::observe::SummaryRequest::parse(window.as_deref(), end, filter).js()?;
        Ok(SummaryJs::from_core(self.observe.summary(&req).await.js()?))
    }

    /// Stop a flow; its final counters.
    #[napi]
    pub async fn flows_stop(&self, name: String, drain: Option<f64>) -> Result<FlowInfoJs> {
        let drain = telemetron::flow::drain_seconds(drain).js()?;
        Ok(FlowInfoJs::from_core(self.flows.stop(&name, drain).await.js()?))
    }
}
