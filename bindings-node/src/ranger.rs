//! `ranger`: named time ranges with metadata.

use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::ranger::{NewRange, Range, RangeQuery};
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
    /// The key of the range this one is a child of.
    pub parent: Option<String>,
}

impl RangeJs {
    pub(crate) fn from_core(r: Range) -> RangeJs {
        RangeJs {
            key: r.key.to_string(),
            name: r.name,
            time_range: TimeRangeJs::from_core(r.time_range),
            labels: r.labels,
            color: r.color,
            parent: r.parent.map(|p| p.to_string()),
        }
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
    /// The key of the range to create this one under.
    pub parent: Option<String>,
}

/// What to search ranges for; every filter given must hold.
#[napi(object)]
pub struct RangeQueryJs {
    /// Text found in the name, a label or a metadata value (case-insensitive).
    pub term: Option<String>,
    /// Only ranges overlapping this time range.
    pub overlapping: Option<TimeRangeJs>,
    /// Only ranges carrying every one of these labels (any case).
    pub labels: Option<Vec<String>>,
    /// Only ranges whose metadata has each of these entries exactly.
    pub meta_data: Option<HashMap<String, String>>,
    /// Only direct children of this range key.
    pub parent: Option<String>,
}

impl RangeQueryJs {
    pub(crate) fn to_core(&self) -> Result<RangeQuery> {
        Ok(RangeQuery {
            term: self.term.clone().unwrap_or_default(),
            overlapping: self.overlapping.as_ref().map(TimeRangeJs::to_core).transpose()?,
            labels: self.labels.clone().unwrap_or_default(),
            meta_data: self.meta_data.clone().unwrap_or_default().into_iter().collect(),
            parent: self.parent.as_deref().map(range_key).transpose()?,
        })
    }
}

impl NewRangeJs {
    pub(crate) fn to_core(&self) -> Result<NewRange> {
        Ok(NewRange {
            name: self.name.clone(),
            time_range: self.time_range.to_core()?,
            labels: self.labels.clone().unwrap_or_default(),
            color: self.color.clone(),
            meta_data: self.meta_data.clone().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
            parent: self.parent.as_deref().map(range_key).transpose()?,
        })
    }
}

/// Parse a range key.
pub(crate) fn range_key(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| invalid(format!("range key {s:?} is not a UUID ({e}); pass range.key")))
}
