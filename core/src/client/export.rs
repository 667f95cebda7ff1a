//! Export stored channels to Parquet or CSV files, streaming in bounded memory (feature
//! `export`).
//!
//! [`Client::export`] reads the channels through an iterator in chunks sized from the
//! memory budget, turns each chunk into one Arrow record batch ([`crate::telem::arrow`]) and
//! appends it to the file. Memory is the chunk being converted plus, for Parquet, the row
//! group being encoded, which is flushed whenever it reaches half the budget; it does not
//! grow with the length of the range. It works the same on both backends: embedded, the
//! file is written next to the engine; remote, the node serves the chunks and the client
//! writes the file.
//!
//! The file is written under a temporary name beside the destination and renamed into
//! place when complete, so a failed or cancelled export never leaves a partial file under
//! the requested name (nor replaces an existing one).
//!
//! Columns: the index channel first (as a UTC nanosecond timestamp column, named after the
//! index), then the data channels in the order asked. Every channel must share that one
//! index, so that a row is one instant; export channels of other indexes to other files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Client;
use crate::channel::{Channel, ChannelRef};
use crate::error::{Error, Result};
use crate::framer::{IterSpan, IteratorConfig};
use crate::telem::{TimeRange, arrow};

/// File formats [`Client::export`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Apache Parquet, Snappy-compressed, one row group per flushed chunk.
    Parquet,
    /// Comma-separated values with a header row; timestamps in RFC 3339 (UTC).
    Csv,
}

impl ExportFormat {
    /// The format a path's extension names (`.parquet`/`.pq`, `.csv`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other extension.
    pub fn from_path(path: &Path) -> Result<ExportFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("parquet" | "pq") => Ok(ExportFormat::Parquet),
            Some("csv") => Ok(ExportFormat::Csv),
            _ => Err(Error::InvalidArgument {
                reason: format!("cannot tell the export format of {}: name it .parquet or .csv, or give the format", path.display()),
            }),
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Ok(ExportFormat::Parquet),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(Error::InvalidArgument { reason: format!("unknown export format {other:?}: use parquet or csv") }),
        }
    }
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The destination file.
    pub path: PathBuf,
    /// The format; `None` takes it from the path's extension.
    pub format: Option<ExportFormat>,
    /// The channels (data channels of one index; the index itself is added).
    pub channels: Vec<ChannelRef>,
    /// The time range to export.
    pub range: TimeRange,
    /// Memory the export may use for data in flight, in bytes (default 64 MiB, at least
    /// 1 MiB).
    pub memory_budget: usize,
}

impl ExportConfig {
    /// Export `channels` over `range` to `path`, the format from its extension.
    pub fn new(path: impl Into<PathBuf>, channels: Vec<ChannelRef>, range: TimeRange) -> ExportConfig {
        ExportConfig { path: path.into(), format: None, channels, range, memory_budget: 64 << 20 }
    }
}

/// Progress reported after every chunk written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportProgress {
    /// Rows written so far.
    pub rows: u64,
    /// Sample bytes read so far.
    pub bytes: u64,
    /// How far through the range's data, 0.0 to 1.0 (by time).
    pub fraction: f64,
    /// Seconds since the export started.
    pub elapsed: f64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Its format.
    pub format: ExportFormat,
    /// The column names, index first.
    pub columns: Vec<String>,
    /// Rows written.
    pub rows: u64,
    /// Sample bytes read.
    pub bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument { reason: format!("export: cannot {what} {}: {e}", path.display()) }
}

enum Sink {
    Parquet(parquet::arrow::ArrowWriter<BufWriter<File>>),
    Csv(arrow_csv::Writer<BufWriter<File>>),
}

/// Removes the temporary file unless the export completed.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Client {
    /// Write `config.channels` over `config.range` to a Parquet or CSV file, streaming in
    /// bounded memory; `progress` is called after each chunk and cancels the export by
    /// returning an error (which `export` then returns). See the [module docs](self).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown format, channels of different indexes,
    /// virtual channels or an unwritable path; channel, storage and transport errors.
    pub async fn export(
        &self,
        config: ExportConfig,
        progress: &mut (dyn FnMut(&ExportProgress) -> Result<()> + Send),
    ) -> Result<ExportReport> {
        let format = match config.format {
            Some(f) => f,
            None => ExportFormat::from_path(&config.path)?,
        };
        if config.channels.is_empty() {
            return Err(Error::InvalidArgument { reason: "export: name at least one channel".into() });
        }
        let asked = self.channels(&config.channels).await?;
        let columns = self.export_columns(asked).await?;
        let index = columns[0].clone();
        let keys: Vec<_> = columns.iter().map(|c| c.key).collect();

        // Chunks sized so that one chunk's samples take at most a quarter of the budget.
        let budget = config.memory_budget.max(1 << 20);
        let row_bytes: usize = columns.iter().map(|c| c.data_type.density().unwrap_or(32)).sum();
        let chunk = (budget / 4 / row_bytes.max(1)).max(1) as u64;

        let span = self.time_range(index.key).await?.map_or(TimeRange::default(), |t| t.intersect(&config.range));
        let tmp = TempFile { path: temp_path(&config.path), keep: false };
        let file = File::create(&tmp.path).map_err(|e| io_error("create", &tmp.path, e))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let fields: Vec<_> = columns.iter().map(|c| arrow::field(&c.name, c.data_type)).collect();
        let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
        let mut sink = match format {
            ExportFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(chunk.max(1024) as usize))
                    .build();
                Sink::Parquet(
                    parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .map_err(|e| io_error("start", &config.path, e))?,
                )
            }
            ExportFormat::Csv => {
                Sink::Csv(arrow_csv::WriterBuilder::new().with_header(true).with_timestamp_format(CSV_TIME.into()).build(out))
            }
        };

        let started = Instant::now();
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut it = self.open_iterator(IteratorConfig { chunk_size: chunk, ..IteratorConfig::new(config.range, keys.clone()) }).await?;
        it.seek_first().await?;
        while it.next(IterSpan::Samples(chunk)).await? {
            let frame = it.take_value();
            let mut cols = Vec::with_capacity(columns.len());
            for c in &columns {
                let parts: Vec<_> = frame.get(c.key).cloned().collect();
                cols.push((c.name.clone(), c.data_type, arrow::parts_array(c.data_type, &parts)?));
            }
            let batch = arrow::batch(cols)?;
            if batch.num_rows() == 0 {
                continue;
            }
            let n = batch.num_rows() as u64;
            match &mut sink {
                Sink::Parquet(w) => {
                    w.write(&batch).map_err(|e| io_error("write", &config.path, e))?;
                    if w.in_progress_size() >= budget / 2 {
                        w.flush().map_err(|e| io_error("write", &config.path, e))?;
                    }
                }
                Sink::Csv(w) => w.write(&utc_as_naive(batch)?).map_err(|e| io_error("write", &config.path, e))?,
            }
            rows += n;
            bytes += frame.byte_size() as u64;
            let last = frame.get(index.key).last().map(|s| s.time_range().end);
            let fraction = match last {
                Some(end) if span.span().nanos() > 0 => {
                    (end.0.saturating_sub(span.start.0) as f64 / span.span().nanos() as f64).clamp(0.0, 1.0)
                }
                _ => 0.0,
            };
            progress(&ExportProgress { rows, bytes, fraction, elapsed: started.elapsed().as_secs_f64() })?;
        }
        let mut out = match sink {
            Sink::Parquet(w) => w.into_inner().map_err(|e| io_error("finish", &config.path, e))?,
            Sink::Csv(w) => w.into_inner(),
        };
        if format == ExportFormat::Csv && rows == 0 {
            // arrow-csv writes the header with the first batch; an empty export still has one.
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            writeln!(out, "{}", names.join(",")).map_err(|e| io_error("write", &config.path, e))?;
        }
        let file = out.into_inner().map_err(|e| io_error("write", &config.path, e.error()))?;
        file.sync_all().map_err(|e| io_error("sync", &config.path, e))?;
        let file_bytes = file.metadata().map_err(|e| io_error("stat", &config.path, e))?.len();
        drop(file);
        std::fs::rename(&tmp.path, &config.path).map_err(|e| io_error("rename the finished export to", &config.path, e))?;
        let mut tmp = tmp;
        tmp.keep = true;
        progress(&ExportProgress { rows, bytes, fraction: 1.0, elapsed: started.elapsed().as_secs_f64() })?;
        Ok(ExportReport { path: config.path, format, columns: columns.into_iter().map(|c| c.name).collect(), rows, bytes, file_bytes })
    }

    /// The index then the asked data channels, or why they cannot share one file.
    async fn export_columns(&self, asked: Vec<Channel>) -> Result<Vec<Channel>> {
        if let Some(v) = asked.iter().find(|c| c.is_virtual()) {
            return Err(Error::InvalidArgument {
                reason: format!("export: {:?} is virtual (never stored); export stored channels", v.name),
            });
        }
        let mut indexes: Vec<_> = asked.iter().map(|c| if c.is_index() { c.key } else { c.index_key().unwrap_or(c.key) }).collect();
        indexes.dedup();
        indexes.sort_unstable();
        indexes.dedup();
        if indexes.len() > 1 {
            let names: Vec<&str> = asked.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::InvalidArgument {
                reason: format!(
                    "export: channels {names:?} belong to {} different indexes; a file's rows are instants of one index, so export each index's channels to its own file",
                    indexes.len()
                ),
            });
        }
        let index = self.channel(ChannelRef::Key(indexes[0])).await?;
        let mut cols = vec![index.clone()];
        for c in asked {
            if c.key != index.key && !cols.iter().any(|x| x.key == c.key) {
                cols.push(c);
            }
        }
        Ok(cols)
    }
}

/// RFC 3339 in UTC with nanoseconds, for CSV timestamp cells.
const CSV_TIME: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";

/// The batch with its UTC timestamp columns relabelled as zone-less (the same buffers):
/// arrow-csv formats named zones only with chrono-tz, and every engine timestamp is UTC,
/// which [`CSV_TIME`] writes as `Z`.
fn utc_as_naive(b: arrow_array::RecordBatch) -> Result<arrow_array::RecordBatch> {
    use arrow_schema::{DataType as A, Field, TimeUnit};
    let naive = A::Timestamp(TimeUnit::Nanosecond, None);
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut cols = Vec::with_capacity(b.num_columns());
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if matches!(f.data_type(), A::Timestamp(..)) {
            let data = c
                .to_data()
                .into_builder()
                .data_type(naive.clone())
                .build()
                .map_err(|e| crate::telem::SeriesError::Arrow { reason: e.to_string() })?;
            cols.push(arrow_array::make_array(data));
            fields.push(Field::new(f.name(), naive.clone(), false));
        } else {
            cols.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    arrow_array::RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(fields)), cols)
        .map_err(|e| crate::telem::SeriesError::Arrow { reason: e.to_string() }.into())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}
