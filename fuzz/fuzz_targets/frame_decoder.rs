//! The binary frame decoder must never panic, and whatever it accepts must re-encode to
//! a frame that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetron::protocol::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = codec::decode(bytes::Bytes::copy_from_slice(data)) {
        let again = codec::decode(bytes::Bytes::from(codec::encode(&frame))).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
});
