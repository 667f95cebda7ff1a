//! Ranges: conversions between core ranges and the dicts the Python layer wraps.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use telemetron::ranger::Range;
use uuid::Uuid;

use crate::error::invalid;

/// A range as a dict: `{"key", "name", "start", "end", "labels", "color", "parent"}`.
pub fn range_to_py<'py>(py: Python<'py>, r: &Range) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", r.key.to_string())?;
    d.set_item("name", &r.name)?;
    d.set_item("start", r.time_range.start.0)?;
    d.set_item("end", r.time_range.end.0)?;
    d.set_item("labels", &r.labels)?;
    d.set_item("color", &r.color)?;
    d.set_item("parent", r.parent.map(|p| p.to_string()))?;
    Ok(d)
}

/// Ranges as a list of dicts.
pub fn ranges_to_py<'py>(py: Python<'py>, rs: &[Range]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in rs {
        out.append(range_to_py(py, r)?)?;
    }
    Ok(out)
}

/// Parse a range key.
pub fn range_key(key: &str) -> PyResult<Uuid> {
    Uuid::parse_str(key).map_err(|e| invalid(format!("{key:?} is not a range key (a UUID): {e}")))
}
