//! # Telemetron
//!
//! A real-time telemetry and control engine for hardware: test stands, rockets, lab rigs,
//! factory cells. Sensors write samples at Hz to MHz rates into **channels**; the engine
//! stores them durably, streams them live, arbitrates control, and serves recorded ranges.
//!
//! - [`telem`]: the vocabulary: [`telem::DataType`], [`telem::TimeStamp`],
//!   [`telem::Series`] (zero-copy, reference-counted), [`telem::Frame`].
//! - [`channel`]: index, data and virtual channels and their registry.
//! - [`storage`]: the durable, append-only storage engine (see its docs for the
//!   durability and recovery guarantees).
//! - [`framer`]: writers (validation → control gate → relay tap → storage) and iterators.
//! - [`relay`]: live streaming to streamers, with lag notices instead of silent drops.
//! - [`control`]: the authority arbiter that decides which writer may command a channel.
//! - [`ranger`]: named time ranges with metadata.
//! - [`client`]: [`Client`], one async API over an embedded engine or a remote node.
//! - `flow` (feature `flow`): the dataflow runtime, flows of receivers, processors and
//!   exporters over Arrow record batches.
//! - [`protocol`]: the wire shared by the server and the remote client.
//! - `server` (feature `server`): the node, serving an engine over HTTP and WebSocket.
//!
//! The modules form layers (lower never depends on higher); the "may depend on" table in
//! `docs/architecture.md` §1 lists them and `core/tests/layering.rs` enforces it.
//!
//! ## Cargo features
//!
//! All on by default:
//!
//! - `server`: the `server` module (`serve`, `ServerConfig`); brings axum, hyper, rustls,
//!   tokio-rustls and tokio-tungstenite.
//! - `remote`: `connect` and the client's remote backend; brings hyper, rustls,
//!   tokio-rustls, webpki-roots and tokio-tungstenite.
//! - `arrow`: [`telem::arrow`], series and frames as Arrow arrays without copying.
//! - `export`: `Client::export` to Parquet and CSV files.
//! - `flow`: [`flow`], the dataflow runtime (`docs/dataflow.md`).
//! - `cli`: the `telemetron` program (implies `server`, `remote`, `export`, `flow`);
//!   brings clap.
//!
//! A program that embeds the engine uses `default-features = false` and compiles none of
//! them; [`Engine`], [`open`] and the embedded [`Client`] are always there.
//!
//! ## Quick start
//!
//! ```
//! use telemetron::{Engine, channel::NewChannel, framer::WriterConfig, telem::*};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Engine::open(dir.path()).unwrap();
//! let ch = engine.create_channels(vec![
//!     NewChannel::index("stand_time"),
//!     NewChannel::data("pt_1", DataType::F64, "stand_time"),
//! ]).unwrap();
//! let mut w = engine.open_writer(WriterConfig::new(TimeStamp(0), vec![ch[1].key])).unwrap();
//! for i in 0..10i64 {
//!     let f = Frame::new()
//!         .with(ch[0].key, Series::timestamps(vec![i * 1_000_000]))
//!         .with(ch[1].key, Series::from_vec(vec![i as f64 * 1.5]));
//!     w.write(&f).unwrap();
//! }
//! assert_eq!(w.close().unwrap(), TimeStamp(9_000_001));
//! let f = engine.read(TimeRange::MAX, &[ch[1].key]).unwrap();
//! assert_eq!(f.samples(ch[1].key), 10);
//! ```
#![warn(missing_docs)]

mod catalog;
pub mod channel;
pub mod client;
#[cfg(feature = "cluster")]
pub mod cluster;
pub(crate) mod codes;
pub mod control;
mod engine;
pub mod error;
#[cfg(feature = "flow")]
pub mod flow;
pub mod framer;
mod net;
#[cfg(feature = "observe")]
pub mod observe;
pub mod protocol;
pub mod ranger;
pub mod relay;
#[cfg(feature = "server")]
pub mod server;
pub mod storage;
mod storage_error;
pub mod telem;
pub mod users;

#[cfg(feature = "remote")]
pub use client::connect;
pub use client::{Client, ConnectOptions, Credentials, open, open_with};
pub use engine::{CHANGES_CHANNEL, Change, Engine, Options, WeakEngine};
pub use error::{Error, Result};

/// The README's Rust example, compiled and run as a doctest so that it cannot rot (rustdoc
/// runs only the untagged and `rust` blocks; the shell, TypeScript and Python ones are skipped).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
