//! Every JSON message parser of the server (and the client's parsers of the node's
//! replies and errors) must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetron::protocol::messages::*;
use telemetron::protocol::{WireError, parse_json};

fuzz_target!(|data: &[u8]| {
    let _ = parse_json::<WriterRequest>(data);
    let _ = parse_json::<StreamerRequest>(data);
    let _ = parse_json::<IteratorRequest>(data);
    let _ = parse_json::<CreateChannels>(data);
    let _ = parse_json::<RetrieveChannels>(data);
    let _ = parse_json::<Search>(data);
    let _ = parse_json::<RangeOfKeys>(data);
    let _ = parse_json::<CreateRange>(data);
    let _ = parse_json::<Meta>(data);
    let _ = parse_json::<LoginRequest>(data);
    let _ = parse_json::<WriterResponse>(data);
    let _ = parse_json::<StreamerResponse>(data);
    let _ = parse_json::<IteratorResponse>(data);
    if let Ok(w) = parse_json::<WireError>(data) {
        let e: telemetron::Error = w.into();
        let _ = (e.code(), e.to_string());
    }
});
