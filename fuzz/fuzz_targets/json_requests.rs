//! Every JSON message parser of the server (and the client's parsers of the node's
//! replies and errors) must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| telemetron::protocol::parse_every_message(data));
