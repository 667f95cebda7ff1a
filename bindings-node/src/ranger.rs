//! `ranger`: named time ranges with metadata.

use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::ranger::{NewRange, Range};
use uuid::Uuid;

use crate::error::invalid;
use crate::telem::TimeRangeJs;

/// A named time range.
#[napi(object)]
pub struct RangeJs {
    /// Unique key (a UUID string).
    pub key: String,
    /// Display name.
    pub name: String,
    /// The period covered.
    pub time_range: TimeRangeJs,
    /// Labels.
    pub labels: Vec<String>,
    /// Display colour.
    pub color: Option<String>,
}

impl RangeJs {
    pub(crate) fn from_core(r: Range) -> RangeJs {
        RangeJs { key: r.key.to_string(), name: r.name, time_range: TimeRangeJs::from_core(r.time_range), labels: r.labels, color: r.color }
    }
}

/// A range to create.
#[napi(object)]
pub struct NewRangeJs {
    /// Display name.
    pub name: String,
    /// The period covered.
    pub time_range: TimeRangeJs,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Colour, e.g. `"#ff8800"`.
    pub color: Option<String>,
    /// Metadata stored with the range.
    pub meta_data: Option<HashMap<String, String>>,
}

impl NewRangeJs {
    pub(crate) fn to_core(&self) -> Result<NewRange> {
        Ok(NewRange {
            name: self.name.clone(),
            time_range: self.time_range.to_core()?,
            labels: self.labels.clone().unwrap_or_default(),
            color: self.color.clone(),
            meta_data: self.meta_data.clone().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
        })
    }
}

/// Parse a range key.
pub(crate) fn range_key(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| invalid(format!("range key {s:?} is not a UUID ({e}); pass range.key")))
}
