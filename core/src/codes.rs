//! [`CodeInfo`]: one error code and its meaning. A leaf module, so every subsystem can list
//! its codes without depending on the umbrella error (`crate::error` re-exports it).

use serde::Serialize;

/// One error code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CodeInfo {
    /// The stable code, e.g. `"write.not_monotonic"`.
    pub code: &'static str,
    /// The family: the code's part before the first dot (`"write"`; `"invalid_argument"`
    /// for the code without a dot). SDKs group their exception classes by family.
    pub family: &'static str,
    /// What the code means, in one line.
    pub summary: &'static str,
}

impl CodeInfo {
    /// An entry; the family is derived from the code.
    pub const fn new(code: &'static str, summary: &'static str) -> CodeInfo {
        CodeInfo { code, family: family_of(code), summary }
    }
}

/// The part of `code` before its first dot (all of it when it has none).
const fn family_of(code: &'static str) -> &'static str {
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'.' {
            let (head, _) = bytes.split_at(i);
            return match std::str::from_utf8(head) {
                Ok(s) => s,
                Err(_) => code,
            };
        }
        i += 1;
    }
    code
}
