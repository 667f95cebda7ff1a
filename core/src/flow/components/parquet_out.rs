//! `parquet_exporter`: rolling Parquet files, ACK after fsync.
//!
//! Messages are appended to the open file (one schema per file: a message of another
//! schema rolls it). A file is rolled when it is `roll` old, holds `max_rows` rows, or the
//! flow ends:
//! 1. the footer is written;
//! 2. the file is fsynced and renamed from `.<name>.partial` to `<prefix>-<first ns>-<n>.parquet`;
//! 3. the directory is fsynced;
//! 4. only then is every message in it ACKed.
//!
//! A failure NACKs them as `unavailable` (retryable) and removes the partial file. A
//! message is never ACKed before it is durable in a complete, readable file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use serde::Deserialize;

use super::super::compile::{Role, Signature};
use super::super::config::duration;
use super::super::message::{Message, Receipt, Signals};
use super::super::signal::Nack;
use super::super::{BoxFuture, Exporter, FlowError};
use super::{Built, Component, options};
use crate::telem::TimeStamp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The directory the files go to (created if missing).
    dir: PathBuf,
    /// File names are `<prefix>-<nanoseconds at open>-<n>.parquet`.
    #[serde(default = "prefix")]
    prefix: String,
    /// Roll a file this long after it was opened (and so ACK its messages at the latest
    /// then).
    #[serde(default = "roll", with = "duration")]
    roll: Duration,
    /// Roll a file when it holds this many rows.
    #[serde(default = "max_rows")]
    max_rows: u64,
}

fn prefix() -> String {
    "part".into()
}
fn roll() -> Duration {
    Duration::from_secs(1)
}
fn max_rows() -> u64 {
    1_000_000
}

pub(super) fn build(v: &serde_json::Value) -> Result<Built, String> {
    let o: Options = options(v)?;
    if o.max_rows == 0 {
        return Err("`max_rows` must be at least 1".into());
    }
    if o.roll.is_zero() {
        return Err("`roll` must be longer than zero".into());
    }
    if o.prefix.is_empty() || o.prefix.contains(['/', '\\']) {
        return Err(format!("`prefix: {:?}` must be a non-empty file name part", o.prefix));
    }
    Ok(Built {
        signature: Signature { role: Role::Exporter, accepts: Signals::ANY, ports: vec![] },
        component: Component::Exporter(Box::new(ParquetExporter { o, file: None, seq: 0 })),
    })
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    partial: PathBuf,
    final_path: PathBuf,
    opened: Instant,
    rows: u64,
    receipts: Vec<Receipt>,
}

struct ParquetExporter {
    o: Options,
    file: Option<OpenFile>,
    seq: u64,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> FlowError {
    move |source| FlowError::Io { context, source }
}

fn fsync_dir(dir: &Path) -> Result<(), FlowError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(format!("fsync of directory {}", dir.display())))
}

impl ParquetExporter {
    fn open(&mut self, schema: SchemaRef) -> Result<(), FlowError> {
        std::fs::create_dir_all(&self.o.dir).map_err(io(format!("creating {}", self.o.dir.display())))?;
        let name = format!("{}-{}-{}.parquet", self.o.prefix, TimeStamp::now().0, self.seq);
        self.seq += 1;
        let final_path = self.o.dir.join(&name);
        let partial = self.o.dir.join(format!(".{name}.partial"));
        let f = File::create(&partial).map_err(io(format!("creating {}", partial.display())))?;
        let props = parquet::file::properties::WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, f), schema.clone(), Some(props))
            .map_err(|e| FlowError::Component(format!("parquet: {e}")))?;
        self.file = Some(OpenFile { writer, schema, partial, final_path, opened: Instant::now(), rows: 0, receipts: Vec::new() });
        Ok(())
    }

    /// Close the open file durably and ACK what it holds; on failure NACK it and remove
    /// the partial file.
    fn roll(&mut self) -> Result<(), FlowError> {
        let Some(f) = self.file.take() else { return Ok(()) };
        let OpenFile { writer, partial, final_path, receipts, .. } = f;
        let done = (|| {
            let out = writer.into_inner().map_err(|e| FlowError::Component(format!("parquet: writing the footer: {e}")))?;
            let file = out
                .into_inner()
                .map_err(|e| FlowError::Io { context: format!("flushing {}", partial.display()), source: e.into_error() })?;
            file.sync_all().map_err(io(format!("fsync of {}", partial.display())))?;
            std::fs::rename(&partial, &final_path).map_err(io(format!("renaming to {}", final_path.display())))?;
            fsync_dir(&self.o.dir)
        })();
        match done {
            Ok(()) => {
                receipts.into_iter().for_each(Receipt::ack);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                for r in receipts {
                    r.nack(Nack::unavailable(format!("parquet file not written: {e}")));
                }
                Err(e)
            }
        }
    }

    fn append(&mut self, msg: &Message) -> Result<(), FlowError> {
        let schema = msg.data.schema();
        if self.file.as_ref().is_some_and(|f| f.schema != schema) {
            self.roll()?;
        }
        if self.file.is_none() {
            self.open(schema)?;
        }
        let f = self.file.as_mut().expect("open");
        f.writer.write(&msg.data).map_err(|e| FlowError::Component(format!("parquet: {e}")))?;
        f.rows += msg.rows() as u64;
        Ok(())
    }

    fn due(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.rows >= self.o.max_rows || f.opened.elapsed() >= self.o.roll)
    }
}

impl Exporter for ParquetExporter {
    fn export(&mut self, msg: Message, receipt: Receipt) -> BoxFuture<'_, Result<(), FlowError>> {
        // File writes and fsync are blocking; this exporter's task is its own.
        let result = tokio::task::block_in_place(|| match self.append(&msg) {
            Ok(()) => {
                self.file.as_mut().expect("open").receipts.push(receipt);
                if self.due() { self.roll() } else { Ok(()) }
            }
            Err(e) => {
                receipt.nack(Nack::unavailable(format!("parquet: {e}")));
                Err(e)
            }
        });
        Box::pin(async move { result })
    }

    fn tick_every(&self) -> Option<Duration> {
        Some((self.o.roll / 4).clamp(Duration::from_millis(1), Duration::from_millis(250)))
    }

    fn tick(&mut self) -> BoxFuture<'_, Result<(), FlowError>> {
        let result = if self.due() { tokio::task::block_in_place(|| self.roll()) } else { Ok(()) };
        Box::pin(async move { result })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), FlowError>> {
        let result = tokio::task::block_in_place(|| self.roll());
        Box::pin(async move { result })
    }
}
