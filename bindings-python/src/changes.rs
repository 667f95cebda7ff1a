//! `client.channels.watch()`: the core's change watcher, each change as a dict.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use telemetron::Change;
use telemetron::channel::ChannelChange;
use telemetron::ranger::RangeChange;

use crate::channel::PyChannel;
use crate::ranger::ranges_to_py;
use crate::relay::{closed, wait_sliced};

/// Changes to channels and ranges (see the core's `ChangeWatcher`).
#[pyclass(module = "telemetron._native")]
#[derive(Debug)]
pub struct ChangeWatcher {
    inner: parking_lot::Mutex<Option<telemetron::client::ChangeWatcher>>,
}

impl ChangeWatcher {
    pub fn new(w: telemetron::client::ChangeWatcher) -> ChangeWatcher {
        ChangeWatcher { inner: parking_lot::Mutex::new(Some(w)) }
    }
}

/// A change as `{"op": ..., ...}` with the fields of its kind: `channels` (Channel objects)
/// or `keys` for channels; `ranges` (range dicts), `keys` (strings), or `key`, `set` and
/// `deleted` for ranges.
fn change_to_py<'py>(py: Python<'py>, c: &Change) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let channels = |d: &Bound<'py, PyDict>, op: &str, chans: &[telemetron::channel::Channel]| -> PyResult<()> {
        d.set_item("op", op)?;
        d.set_item("channels", chans.iter().map(|c| PyChannel { inner: c.clone() }).collect::<Vec<_>>())
    };
    match c {
        Change::Channel(ChannelChange::Created { channels: c }) => channels(&d, "channel.create", c)?,
        Change::Channel(ChannelChange::Renamed { channels: c }) => channels(&d, "channel.rename", c)?,
        Change::Channel(ChannelChange::Updated { channels: c }) => channels(&d, "channel.update", c)?,
        Change::Channel(ChannelChange::Deleted { keys }) => {
            d.set_item("op", "channel.delete")?;
            d.set_item("keys", keys)?;
        }
        Change::Range(RangeChange::Created { ranges }) => {
            d.set_item("op", "range.create")?;
            d.set_item("ranges", ranges_to_py(py, ranges)?)?;
        }
        Change::Range(RangeChange::Updated { ranges }) => {
            d.set_item("op", "range.update")?;
            d.set_item("ranges", ranges_to_py(py, ranges)?)?;
        }
        Change::Range(RangeChange::Deleted { keys }) => {
            d.set_item("op", "range.delete")?;
            d.set_item("keys", keys.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        }
        Change::Range(RangeChange::Meta { key, set, deleted }) => {
            d.set_item("op", "range.meta")?;
            d.set_item("key", key.to_string())?;
            d.set_item("set", set)?;
            d.set_item("deleted", deleted)?;
        }
    }
    Ok(d)
}

#[pymethods]
impl ChangeWatcher {
    /// The next change as a dict, or None after `timeout` seconds (None: wait forever).
    #[pyo3(signature = (timeout=None, slice=0.05))]
    fn next<'py>(&self, py: Python<'py>, timeout: Option<f64>, slice: f64) -> PyResult<Option<Bound<'py, PyDict>>> {
        let inner = &self.inner;
        let c = wait_sliced(py, timeout, slice, |wait| match inner.lock().as_mut() {
            Some(w) => w.next_blocking(wait),
            None => Err(closed()),
        })?;
        c.map(|c| change_to_py(py, &c)).transpose()
    }

    /// Stop watching (later `next` calls raise `StreamClosed`).
    fn close(&self, py: Python<'_>) {
        if let Some(mut w) = self.inner.lock().take() {
            py.detach(|| crate::runtime::runtime().block_on(w.close()));
        }
    }
}
