//! The engine's own tests (storage, relay, control, channels, ranges), through
//! `telemetron::Engine` alone, in one test binary: as separate targets each linked the
//! engine and compiled the shared fixtures again. Run one module with
//! `cargo test -p telemetron --release --test engine -- storage_recovery::`.
//!
//! The crash tests (storage_crash) keep a binary of their own: they kill child processes.

#[path = "../common/mod.rs"]
mod common;
#[path = "../control_support/mod.rs"]
mod control_support;

mod channel_registry;
mod control_arbitration;
mod control_races;
mod engine_lifecycle;
mod ranges;
mod relay_streaming;
mod relay_stress;
mod storage_compact;
mod storage_delete;
mod storage_props;
mod storage_recovery;
mod storage_validation;
mod storage_write_read;
