//! The segment file format (version 2; version 1 is read too). Everything is little-endian.
//!
//! ```text
//! segment   := header record*
//! header    := 64 bytes: magic "TLMSEG\0\x01" | version u32 | 0 u32 | segment id u64
//!              | created ns i64 | 28 zero bytes | crc32c(bytes 0..60) u32
//! record    := record header (56 bytes) payload padding
//!              records start at 8-aligned offsets; padding (zeros) brings the next record
//!              to the next multiple of 8 and is not checksummed
//! rec hdr   := payload crc32c u32 | header crc32c u32 (over header bytes 8..56)
//!              | kind u8 | data type tag u8 | flags u8 | codec u8 | channel u32 | payload len u64
//!              | samples u32 | 0 u32 | alignment u64 | a i64 | b i64
//! ```
//!
//! The header checksum lets recovery walk a segment reading only headers; the payload
//! checksum is verified where a crash can have torn data, and on first read elsewhere.
//!
//! Kinds:
//! - `CHUNK` (1): samples of one channel. `alignment` = (domain << 32 | first position).
//!   For an index channel `a`/`b` are the first and last timestamp. The payload is the raw
//!   samples for fixed-size types, or `(samples + 1)` u64 offsets (starting at 0) followed by
//!   the values for variable-length types.
//! - `COMMIT` (2): every chunk since the previous commit record is committed. `a` = commit
//!   sequence number, `b` = wall-clock ns, `samples` = number of chunks it commits.
//! - `SEAL` (3): the writer closed cleanly after this point; `samples` = number of records
//!   in the segment before it.
//!
//! Version 2 gives the two reserved header bytes of a chunk a meaning (version 1 wrote them
//! as zeros, which version 2 reads as "plain, raw"):
//! - `flags` bit 0, `COMPACTED`: written by compaction; it holds exactly the samples of the
//!   older records it replaced, and supersedes any record of its channel and domain with a
//!   lower commit seq whose positions it covers (docs/architecture.md §9).
//! - `flags` bit 1, `KEPT_RAW` (with `COMPACTED`): compaction tried the channel's codec
//!   and kept the samples raw because compressing did not pay; bits 4-7 hold the tag of
//!   the codec tried, so it is not tried again (another codec is). Builds before it never
//!   set them and ignore them (the version stays 2).
//! - `codec`: 0 raw (the layout above); otherwise the payload is the samples compressed by
//!   [`Codec::from_tag`](super::compress::Codec::from_tag), `samples` of the channel's type.

use crate::telem::{Alignment, DataType};

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"TLMSEG\0\x01";
/// The version this build writes.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads (every later one up to [`FORMAT_VERSION`] too).
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
pub(crate) const HEADER_LEN: u64 = 64;
pub(crate) const RECORD_HEADER_LEN: usize = 56;

pub(crate) const KIND_CHUNK: u8 = 1;
pub(crate) const KIND_COMMIT: u8 = 2;
pub(crate) const KIND_SEAL: u8 = 3;

/// Chunk flag: written by compaction (see the module docs).
pub(crate) const FLAG_COMPACTED: u8 = 1;
/// Chunk flag: compaction tried the channel's codec on these samples and kept them raw,
/// because compressing did not pay; the codec tried is in the flags' high four bits (see
/// the module docs and [`RecordHeader::kept_raw_after`]).
pub(crate) const FLAG_KEPT_RAW: u8 = 2;

/// The flags of a compacted record kept raw after `tried` did not pay.
pub(crate) const fn kept_raw_flags(tried: u8) -> u8 {
    FLAG_COMPACTED | FLAG_KEPT_RAW | (tried << 4)
}

/// Round up to the next multiple of 8.
pub(crate) const fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

pub(crate) fn encode_segment_header(id: u64, created_ns: i64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&id.to_le_bytes());
    h[24..32].copy_from_slice(&created_ns.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Not ours at all.
    ForeignMagic,
    /// Ours, but a format this build cannot read.
    Version(u32),
    /// Checksum mismatch or short header (a torn creation).
    Torn,
}

pub(crate) fn decode_segment_header(h: &[u8]) -> Result<u64, HeaderProblem> {
    let Some(h) = h.first_chunk::<{ HEADER_LEN as usize }>() else {
        return Err(HeaderProblem::Torn);
    };
    if h[0..8] != SEGMENT_MAGIC {
        return Err(if h[0..8].iter().all(|&b| b == 0) { HeaderProblem::Torn } else { HeaderProblem::ForeignMagic });
    }
    let crc = u32::from_le_bytes([h[60], h[61], h[62], h[63]]);
    if crc32c::crc32c(&h[0..60]) != crc {
        return Err(HeaderProblem::Torn);
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderProblem::Version(version));
    }
    Ok(u64::from_le_bytes(h[16..24].try_into().unwrap_or_default()))
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub crc: u32,
    pub kind: u8,
    pub data_type: u8,
    /// Chunk flags ([`FLAG_COMPACTED`]); 0 in version 1.
    pub flags: u8,
    /// Payload codec tag (0 raw); 0 in version 1.
    pub codec: u8,
    pub len: u64,
    pub channel: u32,
    pub samples: u32,
    pub alignment: Alignment,
    pub a: i64,
    pub b: i64,
}

impl RecordHeader {
    pub(crate) fn chunk(dt: DataType, channel: u32, samples: u32, alignment: Alignment, len: u64, ts: (i64, i64)) -> Self {
        RecordHeader {
            crc: 0,
            kind: KIND_CHUNK,
            data_type: dt.tag(),
            flags: 0,
            codec: 0,
            len,
            channel,
            samples,
            alignment,
            a: ts.0,
            b: ts.1,
        }
    }

    pub(crate) fn marker(kind: u8, count: u32, a: i64, b: i64) -> Self {
        RecordHeader { crc: 0, kind, data_type: 0, flags: 0, codec: 0, len: 0, channel: 0, samples: count, alignment: Alignment(0), a, b }
    }

    /// Encode, computing the header checksum (`crc` is the payload checksum, as given).
    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&self.crc.to_le_bytes());
        h[8] = self.kind;
        h[9] = self.data_type;
        h[10] = self.flags;
        h[11] = self.codec;
        h[12..16].copy_from_slice(&self.channel.to_le_bytes());
        h[16..24].copy_from_slice(&self.len.to_le_bytes());
        h[24..28].copy_from_slice(&self.samples.to_le_bytes());
        h[32..40].copy_from_slice(&self.alignment.0.to_le_bytes());
        h[40..48].copy_from_slice(&self.a.to_le_bytes());
        h[48..56].copy_from_slice(&self.b.to_le_bytes());
        let hcrc = crc32c::crc32c(&h[8..]);
        h[4..8].copy_from_slice(&hcrc.to_le_bytes());
        h
    }

    /// Decode; `None` if the header checksum does not match (torn or not a header).
    pub(crate) fn decode(h: &[u8]) -> Option<RecordHeader> {
        let h = h.first_chunk::<RECORD_HEADER_LEN>()?;
        // Constant offsets into a fixed-size header: in bounds by construction.
        let u32_at = |i: usize| h.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let u64_at = |i: usize| h.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if crc32c::crc32c(&h[8..]) != u32_at(4)? {
            return None;
        }
        Some(RecordHeader {
            crc: u32_at(0)?,
            kind: h[8],
            data_type: h[9],
            flags: h[10],
            codec: h[11],
            len: u64_at(16)?,
            channel: u32_at(12)?,
            samples: u32_at(24)?,
            alignment: Alignment(u64_at(32)?),
            a: u64_at(40)? as i64,
            b: u64_at(48)? as i64,
        })
    }

    /// Written by compaction.
    pub(crate) fn is_compacted(&self) -> bool {
        self.flags & FLAG_COMPACTED != 0
    }

    /// Raw because compressing with the codec of this tag did not pay.
    pub(crate) fn kept_raw_after(&self) -> Option<u8> {
        (self.flags & FLAG_KEPT_RAW != 0).then_some(self.flags >> 4)
    }

    /// Total bytes this record occupies on disk, padding included.
    pub(crate) fn footprint(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + pad8(self.len)
    }
}

/// Checksum of a record payload given as parts in order.
pub(crate) fn payload_crc<'a>(payload: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    payload.into_iter().fold(0, crc32c::crc32c_append)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn version_1_segments_and_records_still_decode() {
        // A version-1 segment header (as `encode_segment_header` wrote it before version 2).
        let mut h = encode_segment_header(9, 1);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_segment_header(&h), Ok(9));
        // Version 1 wrote zeros where version 2 keeps flags and codec: plain and raw.
        let r = RecordHeader::decode(&RecordHeader::chunk(DataType::F64, 7, 3, Alignment::new(1, 2), 24, (5, 9)).encode()).unwrap();
        assert!(!r.is_compacted() && r.codec == 0);
        let mut future = encode_segment_header(9, 1);
        future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32c::crc32c(&future[0..60]);
        future[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_segment_header(&future), Err(HeaderProblem::Version(FORMAT_VERSION + 1)));
    }

    #[test]
    fn segment_header_round_trip_and_rejections() {
        let h = encode_segment_header(42, 7);
        assert_eq!(decode_segment_header(&h), Ok(42));
        let mut bad = h;
        bad[20] ^= 1;
        assert_eq!(decode_segment_header(&bad), Err(HeaderProblem::Torn));
        let mut foreign = h;
        foreign[0] = b'X';
        assert_eq!(decode_segment_header(&foreign), Err(HeaderProblem::ForeignMagic));
        assert_eq!(decode_segment_header(&h[..10]), Err(HeaderProblem::Torn));
        assert_eq!(decode_segment_header(&[0u8; 64]), Err(HeaderProblem::Torn));
    }

    proptest! {
        #[test]
        fn record_header_round_trips(kind in 1u8..4, dt in 1u8..17, len in any::<u64>(), ch in any::<u32>(),
                                     n in any::<u32>(), al in any::<u64>(), a in any::<i64>(), b in any::<i64>(), crc in any::<u32>(),
                                     flags in any::<u8>(), codec in any::<u8>()) {
            let h = RecordHeader { crc, kind, data_type: dt, flags, codec, len, channel: ch, samples: n, alignment: Alignment(al), a, b };
            prop_assert_eq!(RecordHeader::decode(&h.encode()), Some(h));
        }

        #[test]
        fn crc_detects_any_single_bit_flip(payload in proptest::collection::vec(any::<u8>(), 1..256), bit in any::<usize>()) {
            let good = payload_crc([payload.as_slice()]);
            let mut flipped = payload.clone();
            let i = bit % (flipped.len() * 8);
            flipped[i / 8] ^= 1 << (i % 8);
            prop_assert_ne!(payload_crc([flipped.as_slice()]), good);
        }

        #[test]
        fn header_flip_is_detected(bit in 64usize..(56 * 8)) {
            let h = RecordHeader::chunk(DataType::F64, 7, 3, Alignment::new(1, 2), 24, (5, 9)).encode();
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(RecordHeader::decode(&bad), None);
        }

        #[test]
        fn parts_crc_equals_whole_crc(data in proptest::collection::vec(any::<u8>(), 0..512), cut in any::<usize>()) {
            let c = if data.is_empty() { 0 } else { cut % data.len() };
            prop_assert_eq!(payload_crc([&data[..c], &data[c..]]), payload_crc([data.as_slice()]));
        }

        #[test]
        fn pad8_is_the_next_multiple(n in 0u64..(u64::MAX - 8)) {
            let p = pad8(n);
            prop_assert!(p >= n && p - n < 8 && p.is_multiple_of(8));
        }
    }
}
