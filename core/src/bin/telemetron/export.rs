//! `telemetron export`: channels of a node or a data directory to a Parquet or CSV file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use telemetron::channel::ChannelRef;
use telemetron::client::export::{ExportConfig, ExportFormat, ExportProgress};
use telemetron::telem::{TimeRange, TimeStamp};
use telemetron::{Client, Error};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (`.parquet` or `.csv`, unless --format says).
    pub out: PathBuf,
    /// Channel names (or keys) of one index; the index column is added first.
    #[arg(long, short, required = true, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Export the time range of this range (its name or UUID).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub range: Option<String>,
    /// Start, nanoseconds since the Unix epoch (inclusive; default: the beginning).
    #[arg(long)]
    pub start: Option<i64>,
    /// End, nanoseconds since the Unix epoch (exclusive; default: the end).
    #[arg(long)]
    pub end: Option<i64>,
    /// parquet or csv (default: from the file's extension).
    #[arg(long)]
    pub format: Option<String>,
    /// Memory for data in flight, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mb: usize,
    /// Read from this node (`http://host:port`) instead of a data directory.
    #[arg(long, conflicts_with = "data")]
    pub url: Option<String>,
    /// Bearer token for --url (or TELEMETRON_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for https.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Read this data directory in this process (not one a running node has open).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(a: ExportArgs) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot start the async runtime: {e}") })?;
    rt.block_on(export(a))
}

async fn client(a: &ExportArgs) -> Result<Client, Error> {
    match (&a.url, &a.data) {
        (Some(url), _) => crate::node::connect(url, a.token.as_deref(), a.ca_cert.clone()).await,
        (None, Some(dir)) => telemetron::open(dir),
        (None, None) => Err(Error::InvalidArgument { reason: "export: give --url of a node or --data of a data directory".into() }),
    }
}

async fn time_range(client: &Client, a: &ExportArgs) -> Result<TimeRange, Error> {
    if let Some(r) = &a.range {
        let range = match r.parse::<uuid::Uuid>() {
            Ok(key) => client.range(key).await?,
            Err(_) => {
                let found: Vec<_> = client.search_ranges(r, None).await?.into_iter().filter(|x| x.name == *r).collect();
                match found.len() {
                    1 => found.into_iter().next().expect("one range"),
                    0 => return Err(Error::InvalidArgument { reason: format!("export: no range is named {r:?}") }),
                    n => return Err(Error::InvalidArgument { reason: format!("export: {n} ranges are named {r:?}; give its UUID") }),
                }
            }
        };
        return Ok(range.time_range);
    }
    let tr = TimeRange::new(a.start.map_or(TimeStamp::MIN, TimeStamp), a.end.map_or(TimeStamp::MAX, TimeStamp));
    if !tr.is_valid() {
        return Err(Error::InvalidArgument { reason: format!("export: --start {} is after --end {}", tr.start, tr.end) });
    }
    Ok(tr)
}

async fn export(a: ExportArgs) -> Result<(), Error> {
    let client = client(&a).await?;
    let range = time_range(&client, &a).await?;
    let refs: Vec<ChannelRef> =
        a.channels.iter().map(|c| c.parse::<u32>().map_or_else(|_| ChannelRef::Name(c.clone()), ChannelRef::Key)).collect();
    let mut config = ExportConfig::new(a.out.clone(), refs, range);
    config.format = a.format.as_deref().map(str::parse::<ExportFormat>).transpose()?;
    config.memory_budget = a.memory_mb.saturating_mul(1 << 20);
    let quiet = a.quiet;
    let mut progress = move |p: &ExportProgress| {
        if !quiet {
            let mb = p.bytes as f64 / 1e6;
            eprint!("\rexport: {:5.1}%  {} rows  {mb:.1} MB  {:.1} MB/s   ", p.fraction * 100.0, p.rows, mb / p.elapsed.max(1e-9));
            let _ = std::io::stderr().flush();
        }
        Ok(())
    };
    let report = client.export(config, &mut progress).await?;
    if !quiet {
        eprintln!();
    }
    println!(
        "wrote {} rows of {} to {} ({}, {} bytes)",
        report.rows,
        report.columns.join(", "),
        report.path.display(),
        if report.format == ExportFormat::Parquet { "parquet" } else { "csv" },
        report.file_bytes
    );
    client.close().await
}
