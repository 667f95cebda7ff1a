//! Python bindings for Telemetron: the `telemetron._native` extension module.
//!
//! A thin translation of the core's client API (argument parsing, conversion, error
//! mapping, runtime bridging); the Python package `telemetron` (in `python/`) builds the
//! user-facing API on top. One file per core module: `telem`, `channel`, `framer`, `relay`,
//! `control`, `ranger`, `client`, `sequence`; the tokio runtime lives in `runtime`, error mapping in
//! `error`.

mod arrow;
mod changes;
mod channel;
mod client;
mod control;
mod error;
mod framer;
mod ranger;
mod relay;
mod runtime;
mod sequence;
mod telem;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::changes::ChangeWatcher;
    #[pymodule_export]
    use super::channel::PyChannel;
    #[pymodule_export]
    use super::client::{Client, set_traceparent};
    #[pymodule_export]
    use super::error::error_codes;
    #[pymodule_export]
    use super::framer::{_bench_core_ingest, _bench_core_write_one, Iterator, Writer};
    #[pymodule_export]
    use super::relay::Streamer;
    #[pymodule_export]
    use super::sequence::{PyTick, PyTicker, Sequence};
    #[pymodule_export]
    use super::telem::{_debug_series_ptr, NativeFrame, SeriesBuffer};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        super::runtime::init();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
