//! Every test that goes through the client or a node served in-process, in one test binary.
//!
//! Each of these modules monomorphizes the same client, server and Arrow code; as separate
//! test targets they compiled it fourteen times (about 570 CPU-seconds of a fresh CI build,
//! `cargo test --timings`). One binary compiles it once. Run one module with
//! `cargo test -p telemetron --release --test client -- reduce::`.
//!
//! Tests that start `telemetron` processes and time them (cluster, flow_scenarios, observe,
//! server_cli) keep binaries of their own, so they do not share a process with these.

#[macro_use]
#[path = "../backends/mod.rs"]
mod backends;

mod changes;
mod client_backends;
mod client_blocking;
mod client_sequences;
mod export;
mod flow_manage;
mod golden_frames;
mod live_alignment;
mod otlp;
mod protocol_fuzz;
mod reduce;
mod server_auth_tls;
mod server_robustness;
mod server_roles;
