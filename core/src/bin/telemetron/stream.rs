//! `telemetron stream <channel...>`: print live values from a node.

use std::time::Duration;

use clap::Args;
use telemetron::Error;
use telemetron::channel::{Channel, ChannelRef};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{Frame, Series, TimeStamp};

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Channel names (or keys) to stream.
    #[arg(required = true)]
    pub channels: Vec<String>,
    #[command(flatten)]
    pub node: crate::node::NodeArgs,
    /// Print every sample instead of the last of each frame.
    #[arg(long)]
    pub all: bool,
    /// Deliver at most this many frames per second (0: every frame).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Stop after this many lines (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

pub fn run(a: StreamArgs) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
    rt.block_on(stream(a))
}

fn value(s: &Series, i: usize) -> String {
    if let Some(t) = s.value_str(i) {
        return t.to_string();
    }
    match s.value_f64(i) {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v}"),
        Some(v) => format!("{v:.3}"),
        None => "?".into(),
    }
}

async fn stream(a: StreamArgs) -> Result<(), Error> {
    let client = a.node.connect().await?;
    let refs: Vec<ChannelRef> =
        a.channels.iter().map(|c| c.parse::<u32>().map_or_else(|_| ChannelRef::Name(c.clone()), ChannelRef::Key)).collect();
    let channels: Vec<Channel> = client.channels(&refs).await?;
    let mut cfg = StreamerConfig::new(channels.iter().map(|c| c.key).collect());
    cfg.throttle_hz = if a.all { 0.0 } else { a.rate.max(0.0) };
    let mut s = client.open_streamer(cfg).await?;
    eprintln!("streaming {} from {} (Ctrl-C to stop)", channels.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "), a.node.url);
    let mut lines = 0u64;
    loop {
        let f: Frame = tokio::select! {
            r = s.next() => match r {
                Ok(f) => f,
                Err(Error::Stream(e @ telemetron::relay::StreamError::Lagged { .. })) => {
                    eprintln!("({e})");
                    continue;
                }
                Err(e) => return Err(e),
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        let now = TimeStamp::now();
        let mut parts = Vec::new();
        for c in &channels {
            let Ok(Some(series)) = f.concat(c.key) else { continue };
            if series.is_empty() {
                continue;
            }
            if a.all {
                for i in 0..series.len() {
                    println!("{now}  {:<16} {}", c.name, value(&series, i));
                }
            } else {
                parts.push(format!("{}={}", c.name, value(&series, series.len() - 1)));
            }
        }
        if !parts.is_empty() {
            println!("{now}  {}", parts.join("  "));
        }
        lines += 1;
        if a.count > 0 && lines >= a.count {
            break;
        }
    }
    s.close().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}
