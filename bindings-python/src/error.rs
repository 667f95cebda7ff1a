//! Core errors as Python exceptions.
//!
//! The exception classes live in `telemetron/errors.py` (so they carry docstrings and can
//! be subclassed from Python); this module maps [`telemetron::Error::code`] onto them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// Convert a core error into the matching `telemetron` exception.
pub fn to_py(e: telemetron::Error) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        Err(fallback) => fallback,
    })
}

fn build(py: Python<'_>, e: &telemetron::Error) -> PyResult<PyErr> {
    static FROM_CODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = FROM_CODE.import(py, "telemetron.errors", "_from_code")?;
    let details = PyDict::new(py);
    if let telemetron::Error::Stream(
        telemetron::relay::StreamError::Lagged { dropped } | telemetron::relay::StreamError::Disconnected { dropped },
    ) = e
    {
        details.set_item("dropped", dropped)?;
    }
    if let telemetron::Error::Control(telemetron::control::ControlError::Lost { channels, .. }) = e {
        details.set_item("channels", channels)?;
    }
    let exc = f.call1((e.code(), e.to_string(), details))?;
    Ok(PyErr::from_value(exc))
}

/// Every error code of the core as `(code, family, summary)`, from
/// `telemetron::error::codes()` (the SDK tests check each has its own exception class).
#[pyfunction]
pub fn error_codes() -> Vec<(&'static str, &'static str, &'static str)> {
    telemetron::error::codes().map(|c| (c.code, c.family, c.summary)).collect()
}

/// `.py()` on core results: map the error into a Python exception.
pub trait IntoPyResult<T> {
    /// Convert the error.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for telemetron::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A `telemetron.InvalidArgument` (also a `ValueError`) with `msg`.
pub fn invalid(msg: impl Into<String>) -> PyErr {
    to_py(telemetron::Error::InvalidArgument { reason: msg.into() })
}
