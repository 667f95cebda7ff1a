//! Instrumentation levels: `off`, `basic`, `detailed`, one each for logs, metrics and traces.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// How much is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing (logs: none at all; metrics: none collected, `/metrics` empty, no
    /// self-telemetry written).
    Off,
    /// Logs: warnings, errors and lifecycle events (`info`). Metrics: per layer and per
    /// flow node, per route for requests.
    #[default]
    Basic,
    /// Logs: also `debug` (each writer, streamer, request). Metrics: also one series per
    /// open streamer.
    Detailed,
}

impl Level {
    /// `off` (a serde default).
    fn off() -> Level {
        Level::Off
    }

    /// Its name: `off`, `basic` or `detailed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Basic => "basic",
            Level::Detailed => "detailed",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Off,
            1 => Level::Basic,
            _ => Level::Detailed,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not `off`, `basic` or `detailed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}: use off, basic or detailed")]
pub struct UnknownLevel(pub String);

impl std::str::FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Level, UnknownLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Level::Off),
            "basic" => Ok(Level::Basic),
            "detailed" => Ok(Level::Detailed),
            _ => Err(UnknownLevel(s.to_string())),
        }
    }
}

/// The levels of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    /// What the node logs.
    pub logs: Level,
    /// What the node measures.
    pub metrics: Level,
    /// What the node traces (`off` by default: spans cost a little on every request and
    /// commit; `basic` records requests, engine writes and storage commits). Nodes that
    /// predate traces answer without it: `off`.
    #[serde(default = "Level::off")]
    pub traces: Level,
}

impl Default for Levels {
    /// Logs and metrics `basic`, traces `off`.
    fn default() -> Self {
        Levels { logs: Level::Basic, metrics: Level::Basic, traces: Level::Off }
    }
}

/// A change of some levels (`None` keeps the level as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LevelsUpdate {
    /// The new log level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Level>,
    /// The new metrics level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Level>,
    /// The new trace level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<Level>,
}

impl LevelsUpdate {
    /// A change given by level names (an SDK's `set_levels(logs=..., metrics=...)`),
    /// checked here once for every language.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] naming a level that is not `off`, `basic` or
    /// `detailed`.
    pub fn parse(logs: Option<&str>, metrics: Option<&str>, traces: Option<&str>) -> crate::Result<LevelsUpdate> {
        let level = |s: Option<&str>| -> crate::Result<Option<Level>> {
            s.map(|s| s.parse::<Level>().map_err(|e| crate::Error::InvalidArgument { reason: e.to_string() })).transpose()
        };
        Ok(LevelsUpdate { logs: level(logs)?, metrics: level(metrics)?, traces: level(traces)? })
    }
}

/// Levels read on hot paths: one relaxed load each.
#[derive(Debug)]
pub(crate) struct LevelCell {
    logs: AtomicU8,
    metrics: AtomicU8,
    traces: AtomicU8,
}

impl LevelCell {
    pub(crate) fn new(l: Levels) -> LevelCell {
        LevelCell { logs: AtomicU8::new(l.logs as u8), metrics: AtomicU8::new(l.metrics as u8), traces: AtomicU8::new(l.traces as u8) }
    }

    pub(crate) fn metrics(&self) -> Level {
        Level::from_u8(self.metrics.load(Ordering::Relaxed))
    }

    pub(crate) fn get(&self) -> Levels {
        Levels {
            logs: Level::from_u8(self.logs.load(Ordering::Relaxed)),
            metrics: self.metrics(),
            traces: Level::from_u8(self.traces.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn update(&self, u: LevelsUpdate) -> Levels {
        if let Some(l) = u.logs {
            self.logs.store(l as u8, Ordering::Relaxed);
        }
        if let Some(m) = u.metrics {
            self.metrics.store(m as u8, Ordering::Relaxed);
        }
        if let Some(t) = u.traces {
            self.traces.store(t as u8, Ordering::Relaxed);
        }
        self.get()
    }
}
