//! The one tokio runtime of the extension, and the bridge from Python threads to it.
//!
//! Every blocking call of the SDK goes through [`block_on`]: the GIL is released
//! (`py.detach`) for the whole wait, so other Python threads keep running. Rust locks are
//! taken *inside* the released section (bindings-recipe pitfall P9). Awaitables
//! (`async for frame in streamer`) run on the same runtime through `pyo3-async-runtimes`.

use std::sync::OnceLock;

/// The process-wide runtime (two workers: the embedded backend completes its futures
/// without waiting; the remote backend needs a reactor for its sockets).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("telemetron-py")
            .enable_all()
            .build()
            .expect("failed to start the tokio runtime")
    })
}

/// Make the runtime the one `pyo3-async-runtimes` uses (called once at import).
pub fn init() {
    // Err only means it was already set (module imported twice in one process).
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime());
}
