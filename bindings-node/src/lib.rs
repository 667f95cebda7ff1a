//! Node.js bindings for Telemetron (napi-rs): a thin translation of the core's client API.
//!
//! One file per core module: [`telem`] (time, series ⇄ typed arrays), [`channel`],
//! [`framer`] (writers, iterators), [`relay`] (streamers), [`control`], [`sequence`] (control sequences, loops), [`ranger`] and
//! [`client`]. The hand-written JS layer in `lib/` adds what JavaScript needs on top:
//! async iterators, name-keyed frames, typed errors and control sequences.
//!
//! ## Runtime
//! Async methods run on napi-rs's tokio runtime (created on first use, shared by every
//! client of the process); the core's async API is runtime-agnostic. Every method that can
//! wait returns a Promise; nothing blocks the JS thread except `Writer.hasControl` (a
//! lock held only while a write is in flight).
//!
//! ## Errors
//! Every failure is a JS `Error` whose message starts with `[telemetron:<code>] `; the JS
//! layer turns that into `err.code` (see [`error`]). Bad input is an error value, never a
//! panic; synchronous exports are compiled with `catch_unwind`, and napi-rs turns a panic in
//! an async export into a rejected promise.

#![deny(clippy::unwrap_used)]
// napi value types (BigInt, typed arrays, Unknown) have no Debug; the JS objects are the API.
#![allow(missing_debug_implementations)]
// napi-derive registers exports only outside `cfg(test)`; `clippy --all-targets` builds that too.
#![cfg_attr(test, allow(dead_code))]

mod changes;
mod channel;
mod client;
mod control;
mod error;
mod flow;
mod framer;
mod ranger;
mod relay;
mod sequence;
mod telem;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use telemetron::channel::{Channel, ChannelKind, Concurrency};
use telemetron::telem::TimeStamp;

/// The current wall-clock time in nanoseconds since the Unix epoch.
#[napi(catch_unwind)]
pub fn now() -> BigInt {
    telem::big(TimeStamp::now().0)
}

/// Debug helper: the address of a typed array's first element as Rust sees it (0 for
/// anything that is not a typed array). Used by the zero-copy tests.
#[napi(catch_unwind)]
pub fn debug_address_of(#[napi(ts_arg_type = "unknown")] value: Unknown) -> Result<f64> {
    telem::typed_array_address(&value)
}

/// Debug helper: convert `value` exactly as a write to a channel of `dataType` would and
/// return the address of the resulting series' buffer. Equal to `debugAddressOf(value)`
/// when the write path does not copy.
#[napi(catch_unwind)]
pub fn debug_input_address(data_type: String, #[napi(ts_arg_type = "unknown")] value: Unknown) -> Result<f64> {
    let ch = Channel {
        key: 0,
        name: "debug".into(),
        data_type: telem::data_type(&data_type)?,
        kind: ChannelKind::Virtual,
        concurrency: Concurrency::Shared,
        internal: false,
        compression: Default::default(),
    };
    let s = telem::Column::from_js(&value)?.into_series(&ch)?;
    Ok(if s.is_empty() { 0.0 } else { s.data().as_ptr() as usize as f64 })
}

/// The stable error-message prefix (`[telemetron:`), for the JS layer.
#[napi]
pub const ERROR_PREFIX: &str = error::PREFIX;
