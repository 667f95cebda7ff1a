//! Control state: who holds which channel.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use telemetron::control::State;

/// A control state as a dict: `{"subject": {"key", "name", "group"}, "channel", "authority"}`.
pub fn state_to_py<'py>(py: Python<'py>, s: &State) -> PyResult<Bound<'py, PyDict>> {
    let subject = PyDict::new(py);
    subject.set_item("key", &s.subject.key)?;
    subject.set_item("name", &s.subject.name)?;
    subject.set_item("group", s.subject.group)?;
    let d = PyDict::new(py);
    d.set_item("subject", subject)?;
    d.set_item("channel", s.resource)?;
    d.set_item("authority", s.authority)?;
    Ok(d)
}
