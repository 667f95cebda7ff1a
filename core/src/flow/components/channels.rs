//! `channels` receiver and exporter: frames in and out of an engine or a node, through the
//! existing [`Client`] (embedded or remote).
//!
//! A frames message is a record batch with one column per channel: the index column is
//! the one named by `index:` or else the first timestamp column; every other column is a
//! data channel bound to it. Column names are channel names (with `prefix` on export).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::super::compile::{PortType, Role, Signature};
use super::super::message::{Message, Receipt, SignalType, Signals};
use super::super::runtime::ReceiverCx;
use super::super::signal::Nack;
use super::super::{BoxFuture, Exporter, FlowError, Receiver};
use super::{BuildEnv, Built, Component, options};
use crate::channel::NewChannel;
use crate::client::Client;
#[cfg(feature = "remote")]
use crate::client::{ConnectOptions, Credentials};
use crate::relay::StreamerConfig;
use crate::telem::{self, ChannelKey, DataType, Frame, TimeStamp};

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Target {
    /// A node to reach (`http://host:port`); default: the engine the flow runs on.
    url: Option<String>,
    /// Bearer token for `url`.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    token: Option<String>,
}

impl Target {
    async fn client(&self, env: &Option<Client>) -> Result<Client, FlowError> {
        match &self.url {
            #[cfg(feature = "remote")]
            Some(url) => {
                let mut opts = ConnectOptions::default();
                if let Some(token) = &self.token {
                    opts.credentials = Credentials::Token { token: token.clone() };
                }
                Ok(crate::client::connect(url, opts).await?)
            }
            #[cfg(not(feature = "remote"))]
            Some(_) => Err(FlowError::Component("`url`: this build has no remote client (feature `remote`)".into())),
            None => env.clone().ok_or_else(|| {
                FlowError::Component("no engine to reach: give `url:`, or run the flow with --data DIR or inside `telemetron serve`".into())
            }),
        }
    }
}

// ---- exporter ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExporterOptions {
    #[serde(flatten)]
    target: Target,
    /// Put before every channel name.
    #[serde(default)]
    prefix: String,
    /// The index column (default: the first timestamp column).
    index: Option<String>,
}

pub(super) fn exporter(v: &serde_json::Value, env: &BuildEnv) -> Result<Built, String> {
    let o: ExporterOptions = options(v)?;
    if o.target.url.is_none() && env.client.is_none() && !env.checking {
        return Err("no engine to write to: give `url:`, or run the flow with --data DIR or inside `telemetron serve`".into());
    }
    Ok(Built {
        signature: Signature { role: Role::Exporter, accepts: Signals::of(SignalType::Frames).with(SignalType::Metrics), ports: vec![] },
        component: Component::Exporter(Box::new(ChannelsExporter { o, env: env.client.clone(), client: None, keys: HashMap::new() })),
    })
}

struct ChannelsExporter {
    o: ExporterOptions,
    env: Option<Client>,
    client: Option<Client>,
    keys: HashMap<String, ChannelKey>,
}

/// A message made ready to write.
struct Prepared {
    frame: Frame,
    /// The index channel's timestamps.
    times: Vec<i64>,
}

impl ChannelsExporter {
    /// The frame of a message, creating its channels when needed.
    async fn frame(&mut self, msg: &Message) -> Result<Prepared, Nack> {
        let schema = msg.data.schema();
        let fields = schema.fields();
        let index = match &self.o.index {
            Some(name) => {
                fields.iter().position(|f| f.name() == name).ok_or_else(|| Nack::rejected(format!("no index column `{name}`")))?
            }
            None => fields
                .iter()
                .position(|f| telem::arrow::data_type_of(f).is_ok_and(|t| t == DataType::Timestamp))
                .ok_or_else(|| Nack::rejected("frames need a timestamp column for the index"))?,
        };
        let mut columns = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            let dt = telem::arrow::data_type_of(f).map_err(|e| Nack::rejected(format!("column `{}`: {e}", f.name())))?;
            let series = telem::arrow::series_from_arrow(dt, msg.data.column(i).as_ref())
                .map_err(|e| Nack::rejected(format!("column `{}`: {e}", f.name())))?;
            columns.push((format!("{}{}", self.o.prefix, f.name()), dt, series));
        }
        let index_name = columns[index].0.clone();
        let wanted = columns
            .iter()
            .enumerate()
            .map(|(i, (n, dt, _))| if i == index { NewChannel::index(n) } else { NewChannel::data(n, *dt, &index_name) })
            .collect();
        self.ensure(wanted).await?;
        let times = columns[index].2.as_timestamps().map_err(|e| Nack::rejected(format!("index column: {e}")))?.to_vec();
        if times.is_empty() {
            return Err(Nack::rejected("the message has no rows"));
        }
        let frame = columns.into_iter().map(|(n, _, s)| (self.keys[&n], s)).collect();
        Ok(Prepared { frame, times })
    }

    /// Make sure the channels of `wanted` exist (created when missing, index channels
    /// first), and know their keys.
    async fn ensure(&mut self, wanted: Vec<NewChannel>) -> Result<(), Nack> {
        let missing: Vec<NewChannel> = wanted.into_iter().filter(|c| !self.keys.contains_key(&c.name)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client.as_ref().expect("connected");
        // Index channels first: data channels refer to them by name.
        let (idx, data): (Vec<_>, Vec<_>) = missing.into_iter().partition(|c| c.is_index);
        for batch in [idx, data] {
            if batch.is_empty() {
                continue;
            }
            let made = client.create_channels(batch, true).await.map_err(|e| Nack::rejected(format!("creating channels: {e}")))?;
            for c in made {
                self.keys.insert(c.name.clone(), c.key);
            }
        }
        Ok(())
    }

    /// A metrics message as one write per series (`docs/observability.md` §8): the series
    /// of a row is its name and attributes, [`metric_channel`]; its channel is a float64
    /// channel bound to its own index channel `<series>:time`. Points of a series that
    /// share a timestamp keep the last.
    async fn series(&mut self, msg: &Message) -> Result<Vec<Prepared>, Nack> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Float64Type, TimestampNanosecondType};
        let col = |n: &str| msg.data.column_by_name(n).ok_or_else(|| Nack::rejected(format!("metrics without a `{n}` column")));
        let (time, name, value, attrs) = (col("time_unix_nano")?, col("name")?, col("value")?, col("attributes")?);
        let (time, name) = (time.as_primitive::<TimestampNanosecondType>(), name.as_string::<i32>());
        let (value, attrs) = (value.as_primitive::<Float64Type>(), attrs.as_string::<i32>());
        let mut points: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, f64>> = Default::default();
        for i in 0..msg.rows() {
            let series = format!("{}{}", self.o.prefix, metric_channel(name.value(i), attrs.value(i)));
            points.entry(series).or_default().insert(time.value(i), value.value(i));
        }
        let mut wanted = Vec::new();
        for series in points.keys() {
            let index = format!("{series}:time");
            wanted.push(NewChannel::index(&index));
            wanted.push(NewChannel::data(series, DataType::F64, &index));
        }
        self.ensure(wanted).await?;
        let mut out = Vec::with_capacity(points.len());
        for (series, pts) in points {
            let index_key = self.keys[&format!("{series}:time")];
            let times: Vec<i64> = pts.keys().copied().collect();
            let values: Vec<f64> = pts.into_values().collect();
            let frame = [(index_key, telem::Series::timestamps(times.clone())), (self.keys[&series], telem::Series::from_vec(values))]
                .into_iter()
                .collect();
            out.push(Prepared { frame, times });
        }
        Ok(out)
    }

    /// Write and commit `p` in one call (`Client::write`). Each message is its own stored
    /// domain, exactly its time range: messages may arrive out of time order (a durable
    /// queue drained after a failover, retries) and one that belongs in a gap between
    /// stored messages is written there. A writer kept open across messages would claim
    /// the gaps between them, and a late message in a gap could then never be stored.
    async fn write(&self, p: &Prepared) -> Result<(), crate::Error> {
        let client = self.client.as_ref().expect("connected");
        client.write(TimeStamp(p.times[0]), p.frame.clone()).await.map(|_| ())
    }

    /// Whether the node holds exactly `p` already, every channel's samples over its time
    /// range (a message delivered twice, at least once upstream): then it is stored, and
    /// ACKed, once. Different samples at the same times are a conflict, not a duplicate.
    async fn already_stored(&self, p: &Prepared) -> bool {
        let (first, last) = (p.times[0], *p.times.last().expect("not empty"));
        let client = self.client.as_ref().expect("connected");
        let keys: Vec<ChannelKey> = p.frame.keys().to_vec();
        match client.read(telem::TimeRange::from_nanos(first, last.saturating_add(1)), &keys).await {
            Ok(f) => p.frame.iter().all(|(key, series)| f.concat(key).ok().flatten().is_some_and(|s| s == *series)),
            Err(_) => false,
        }
    }
}

impl Exporter for ChannelsExporter {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        Box::pin(async move {
            if self.client.is_none() {
                match self.o.target.client(&self.env).await {
                    Ok(c) => self.client = Some(c),
                    Err(e) => {
                        receipt.nack(Nack::unavailable(e.to_string()));
                        return Err(e);
                    }
                }
            }
            let prepared = match msg.signal {
                SignalType::Metrics => self.series(&msg).await,
                _ => self.frame(&msg).await.map(|p| vec![p]),
            };
            let prepared = match prepared {
                Ok(p) => p,
                Err(nack) => {
                    let e = FlowError::Component(nack.to_string());
                    receipt.nack(nack);
                    return Err(e);
                }
            };
            for p in &prepared {
                match self.write(p).await {
                    Ok(()) => {}
                    // Refused as overlapping what is stored: a duplicate (stored once) when
                    // the node has exactly these timestamps, a conflict (NACK) when not.
                    Err(e) if matches!(e.code(), "write.overlaps_committed" | "write.overlap") && self.already_stored(p).await => {}
                    Err(e) => {
                        receipt.nack(nack_of(&e, "writing"));
                        return Err(e.into());
                    }
                }
            }
            receipt.ack();
            Ok(())
        })
    }
}

/// The channel name of a metric series: its name, then its attributes as `{k=v,...}`
/// sorted by key (string values as themselves, others as JSON), nothing when it has none.
/// `value` of `{"stand":"A","n":2}` and `pt` are `value{n=2,stand=A}` and `pt`.
pub(crate) fn metric_channel(name: &str, attributes: &str) -> String {
    let attrs: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(attributes).unwrap_or_default();
    if attrs.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = attrs
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    format!("{name}{{{}}}", parts.join(","))
}

/// A failure of the engine or node as a NACK: the network failing is retryable
/// (`unavailable`); anything the engine refuses (`write.overlap` for data it already has,
/// a type mismatch) is permanent (`rejected`).
fn nack_of(e: &crate::Error, doing: &str) -> Nack {
    let message = format!("{doing}: {e} ({})", e.code());
    if e.code().starts_with("net.") || e.code().starts_with("node.") { Nack::unavailable(message) } else { Nack::rejected(message) }
}

// ---- receiver ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverOptions {
    #[serde(flatten)]
    target: Target,
    /// The channels to stream (names; their index channels are added).
    channels: Vec<String>,
}

pub(super) fn receiver(v: &serde_json::Value, env: &BuildEnv) -> Result<Built, String> {
    let o: ReceiverOptions = options(v)?;
    if o.channels.is_empty() {
        return Err("`channels` names at least one channel to stream".into());
    }
    if o.target.url.is_none() && env.client.is_none() && !env.checking {
        return Err("no engine to stream from: give `url:`, or run the flow with --data DIR or inside `telemetron serve`".into());
    }
    Ok(Built {
        signature: Signature {
            role: Role::Receiver,
            accepts: Signals::NONE,
            ports: vec![("out", PortType::Fixed(Signals::of(SignalType::Frames)))],
        },
        component: Component::Receiver(Box::new(ChannelsReceiver { o, env: env.client.clone() })),
    })
}

struct ChannelsReceiver {
    o: ReceiverOptions,
    env: Option<Client>,
}

impl Receiver for ChannelsReceiver {
    fn run(self: Box<Self>, mut cx: ReceiverCx) -> BoxFuture<'static, Result<(), FlowError>> {
        Box::pin(async move {
            let client = self.o.target.client(&self.env).await?;
            let refs: Vec<crate::channel::ChannelRef> = self.o.channels.iter().map(|n| n.as_str().into()).collect();
            let channels = client.with_index_channels(client.channels(&refs).await?).await?;
            let names: HashMap<ChannelKey, (String, DataType)> = channels.iter().map(|c| (c.key, (c.name.clone(), c.data_type))).collect();
            let mut streamer = client.open_streamer(StreamerConfig::new(channels.iter().map(|c| c.key).collect())).await?;
            // Live data cannot be asked for again: messages are sent without waiting for
            // their acknowledgement (best effort; put a durable queue after it for more).
            while !cx.stopping() {
                while cx.try_control().is_some() {}
                let Some(frame) = streamer.next_timeout(Duration::from_millis(50)).await? else { continue };
                let mut cols = Vec::new();
                for (key, series) in frame.iter() {
                    let Some((name, dt)) = names.get(&key) else { continue };
                    let a = telem::arrow::series_array(series).map_err(|e| FlowError::Component(e.to_string()))?;
                    cols.push((name.clone(), *dt, a));
                }
                if cols.is_empty() {
                    continue;
                }
                let batch = telem::arrow::batch(cols).map_err(|e| FlowError::Component(e.to_string()))?;
                let _ = cx.send(Message::new(SignalType::Frames, batch)).await;
            }
            streamer.close().await;
            Ok(())
        })
    }
}
