//! Error mapping: core errors become JS `Error`s that carry the core's stable code.
//!
//! napi-rs only lets an async function reject with its own `Status` as `code`, so the
//! native layer prefixes every message with `[telemetron:<code>] `; the JS layer
//! (`lib/errors.js`) strips the prefix, sets `err.code` and picks the error class. The
//! codes are exactly [`telemetron::Error::code`]'s, plus `invalid_argument` for bad input
//! caught here and `stream.closed` / `engine.closed` for objects used after `close()`.

use napi::{Error, Status};
use napi_derive::napi;

/// The marker the JS layer looks for.
pub(crate) const PREFIX: &str = "[telemetron:";

/// An error with a stable `code` and a message that says what to do.
pub(crate) fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{PREFIX}{code}] {message}"))
}

/// Map a core error. Errors with details carry them as JSON after the code
/// (`[telemetron:control.lost|{"channels":["valve"]}] ...`), which the JS layer sets as
/// properties of the error (`err.channels`).
pub(crate) fn core(e: telemetron::Error) -> Error {
    if let telemetron::Error::Control(telemetron::control::ControlError::Lost { channels, .. }) = &e {
        let details = serde_json::json!({ "channels": channels });
        return Error::new(Status::GenericFailure, format!("{PREFIX}{}|{details}] {e}", e.code()));
    }
    coded(e.code(), &e)
}

/// Bad input from JavaScript.
pub(crate) fn invalid(message: impl std::fmt::Display) -> Error {
    coded("invalid_argument", message)
}

/// An object used after it was closed.
pub(crate) fn closed(what: &str) -> Error {
    coded("engine.closed", format!("{what} is closed; open a new one"))
}

/// One entry of [`error_codes`].
#[napi(object)]
pub struct ErrorCode {
    /// The stable code.
    pub code: String,
    /// Its family (the part before the first dot).
    pub family: String,
    /// What it means, in one line.
    pub summary: String,
}

/// Every error code of the core, from `telemetron::error::codes()` (the Node tests check
/// each has a class in `lib/errors.js`).
#[napi]
pub fn error_codes() -> Vec<ErrorCode> {
    telemetron::error::codes()
        .map(|c| ErrorCode { code: c.code.to_string(), family: c.family.to_string(), summary: c.summary.to_string() })
        .collect()
}

/// `Result` with the core's error mapped.
pub(crate) trait IntoNapi<T> {
    /// Map the error to a coded JS error.
    fn js(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for telemetron::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(core)
    }
}
