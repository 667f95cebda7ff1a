//! Ranges: conversions between core ranges and the dicts the Python layer wraps.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use telemetron::ranger::Range;
use uuid::Uuid;

use crate::error::invalid;

/// A range as a dict: `{"key", "name", "start", "end", "labels", "color"}`.
pub fn range_to_py<'py>(py: Python<'py>, r: &Range) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", r.key.to_string())?;
    d.set_item("name", &r.name)?;
    d.set_item("start", r.time_range.start.0)?;
    d.set_item("end", r.time_range.end.0)?;
    d.set_item("labels", &r.labels)?;
    d.set_item("color", &r.color)?;
    Ok(d)
}

/// Parse a range key.
pub fn range_key(key: &str) -> PyResult<Uuid> {
    Uuid::parse_str(key).map_err(|e| invalid(format!("{key:?} is not a range key (a UUID): {e}")))
}
