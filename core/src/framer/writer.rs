//! Writers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::channel::{Channel, ChannelKey};
use crate::error::Result;
use crate::storage::{Durability, StorageWriter, WriteError, WriterGroupSpec};
use crate::telem::{Frame, TimeStamp};

/// What a writer does with its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterMode {
    /// Store and stream live (default).
    #[default]
    PersistStream,
    /// Store only.
    Persist,
    /// Stream only; nothing is stored.
    Stream,
}

impl WriterMode {
    /// True if frames are stored.
    pub fn persists(self) -> bool {
        matches!(self, WriterMode::PersistStream | WriterMode::Persist)
    }

    /// True if frames are streamed.
    pub fn streams(self) -> bool {
        matches!(self, WriterMode::PersistStream | WriterMode::Stream)
    }
}

/// How to open a writer.
///
/// # Examples
///
/// ```
/// use telemetron::framer::WriterConfig;
/// use telemetron::telem::TimeStamp;
///
/// let cfg = WriterConfig::new(TimeStamp(0), vec![1, 2]).auto_commit(false);
/// assert!(!cfg.auto_commit);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterConfig {
    /// The earliest timestamp the writer may write.
    pub start: TimeStamp,
    /// Channels to write. The index of each data channel is added if missing.
    pub channels: Vec<ChannelKey>,
    /// Persist and/or stream.
    #[serde(default)]
    pub mode: WriterMode,
    /// Durability for this writer; `None` uses the engine's default.
    #[serde(default)]
    pub durability: Option<Durability>,
    /// Commit automatically after writes (default `true`).
    #[serde(default = "default_true")]
    pub auto_commit: bool,
    /// With auto-commit, commit at most this often (zero: after every write).
    #[serde(default)]
    pub auto_commit_interval: Duration,
    /// A name for logs and control state.
    #[serde(default)]
    pub name: String,
}

fn default_true() -> bool {
    true
}

impl WriterConfig {
    /// A persist+stream writer with auto-commit after every write.
    pub fn new(start: TimeStamp, channels: Vec<ChannelKey>) -> WriterConfig {
        WriterConfig {
            start,
            channels,
            mode: WriterMode::default(),
            durability: None,
            auto_commit: true,
            auto_commit_interval: Duration::ZERO,
            name: String::new(),
        }
    }

    /// Set the mode.
    #[must_use]
    pub fn mode(mut self, mode: WriterMode) -> WriterConfig {
        self.mode = mode;
        self
    }

    /// Set the durability.
    #[must_use]
    pub fn durability(mut self, d: Durability) -> WriterConfig {
        self.durability = Some(d);
        self
    }

    /// Turn auto-commit on or off.
    #[must_use]
    pub fn auto_commit(mut self, on: bool) -> WriterConfig {
        self.auto_commit = on;
        self
    }

    /// Auto-commit at most every `every`.
    #[must_use]
    pub fn auto_commit_interval(mut self, every: Duration) -> WriterConfig {
        self.auto_commit_interval = every;
        self
    }

    /// Name the writer.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> WriterConfig {
        self.name = name.into();
        self
    }
}

/// An open writer. See the [module docs](crate::framer).
///
/// Dropping a writer without [`Writer::close`] discards what was not committed.
#[derive(Debug)]
pub struct Writer {
    storage: Option<StorageWriter>,
    channels: Vec<Arc<Channel>>,
    by_key: HashMap<ChannelKey, Arc<Channel>>,
    config: WriterConfig,
    last_commit: Instant,
    end: TimeStamp,
}

impl Writer {
    pub(crate) fn open(
        storage: &Arc<crate::storage::Storage>,
        channels: Vec<Arc<Channel>>,
        config: WriterConfig,
        default_durability: Durability,
    ) -> Result<Writer> {
        if channels.is_empty() {
            return Err(WriteError::InvalidConfig { reason: "a writer needs at least one channel".into() }.into());
        }
        let mut groups: Vec<WriterGroupSpec> = Vec::new();
        if config.mode.persists() {
            for ch in &channels {
                let Some(idx) = ch.index_key() else { continue };
                let gi = match groups.iter().position(|g| g.index.key == idx) {
                    Some(gi) => gi,
                    None => {
                        let index = storage.store(idx).ok_or(crate::channel::ChannelError::KeyNotFound { key: idx })?;
                        groups.push(WriterGroupSpec { index, data: Vec::new() });
                        groups.len() - 1
                    }
                };
                if ch.key != idx {
                    let store = storage.store(ch.key).ok_or(crate::channel::ChannelError::KeyNotFound { key: ch.key })?;
                    groups[gi].data.push(store);
                }
            }
        }
        let sw = if groups.is_empty() {
            None
        } else {
            Some(StorageWriter::open(storage.clone(), groups, config.start, config.durability.unwrap_or(default_durability))?)
        };
        tracing::info!(name = %config.name, channels = channels.len(), start = %config.start, mode = ?config.mode, "writer opened");
        let by_key = channels.iter().map(|c| (c.key, c.clone())).collect();
        Ok(Writer { storage: sw, end: config.start, channels, by_key, config, last_commit: Instant::now() })
    }

    /// The writer's channels (data channels' indexes included).
    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    fn channel(&self, key: ChannelKey) -> Result<&Arc<Channel>> {
        self.by_key.get(&key).ok_or_else(|| WriteError::NotInWriter { channel: key }.into())
    }

    /// Write a frame. The frame is validated completely first: if any rule is broken,
    /// nothing of it is written and the error names the channel and sample at fault.
    ///
    /// # Errors
    /// [`WriteError`] for a broken rule; a storage error if buffering had to write out.
    pub fn write(&mut self, frame: &Frame) -> Result<()> {
        let span = tracing::trace_span!("writer.write", series = frame.len());
        let _e = span.enter();
        let mut stored = true;
        for (k, s) in frame.iter() {
            let ch = self.channel(k)?;
            if ch.is_virtual() {
                stored = false;
                if s.data_type() != ch.data_type {
                    return Err(WriteError::TypeMismatch { channel: ch.name.clone(), expected: ch.data_type, actual: s.data_type() }.into());
                }
            }
        }
        if let Some(sw) = self.storage.as_mut() {
            if stored {
                sw.write(frame)?;
            } else {
                let persisted: Frame = frame
                    .iter()
                    .filter(|(k, _)| self.by_key.get(k).is_some_and(|c| !c.is_virtual()))
                    .map(|(k, s)| (k, s.clone()))
                    .collect();
                sw.write(&persisted)?;
            }
        }
        if self.config.auto_commit && self.last_commit.elapsed() >= self.config.auto_commit_interval {
            self.commit()?;
        }
        Ok(())
    }

    /// Commit everything written so far and return the committed end (last timestamp + 1).
    ///
    /// # Errors
    /// A storage error; the uncommitted samples stay buffered and a later commit retries.
    pub fn commit(&mut self) -> Result<TimeStamp> {
        self.last_commit = Instant::now();
        if let Some(sw) = self.storage.as_mut() {
            self.end = sw.commit()?;
        }
        Ok(self.end)
    }

    /// Commit and close; returns the committed end.
    ///
    /// # Errors
    /// As [`Writer::commit`]; on error the writer is still closed and uncommitted samples
    /// are discarded.
    pub fn close(mut self) -> Result<TimeStamp> {
        let r = self.commit();
        if let Some(mut sw) = self.storage.take() {
            sw.release(true);
        }
        tracing::info!(name = %self.config.name, end = %self.end, "writer closed");
        r
    }

    /// Close without committing: buffered samples are discarded.
    pub fn abort(mut self) {
        if let Some(mut sw) = self.storage.take() {
            sw.release(true);
        }
    }

    /// True if samples are waiting for a commit.
    pub fn has_uncommitted(&self) -> bool {
        self.storage.as_ref().is_some_and(StorageWriter::has_uncommitted)
    }
}
