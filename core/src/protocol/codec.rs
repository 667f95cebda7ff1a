//! The binary frame codec (version 1). All integers are little-endian.
//!
//! ```text
//! frame   := header series*
//! header  := magic "TLMF" | version u16 | flags u16 (0) | series count u32 | 0 u32  (16 bytes)
//! series  := channel u32 | data type u8 | codec u8 | 0 u16 | samples u64 | start i64 | end i64
//!            | alignment u64 | data bytes u64                                          (48 bytes)
//!            data, zero padding to a multiple of 8,
//!            then for variable-length types (samples + 1) u64 offsets starting at 0
//! ```
//!
//! Every field is checked on decode; malformed input is a [`CodecError`], never a panic.
//! Series decoded from an 8-aligned buffer share it (no copy).
//!
//! ## Compressed series
//! `codec` is 0 (raw) unless the receiver asked for compression (the
//! [`COMPRESS_HEADER`](super::COMPRESS_HEADER) on a request or stream upgrade). Then a
//! fixed-size series of at least [`WIRE_COMPRESS_MIN`] bytes may carry a storage codec tag
//! (`storage::compress::Codec`: 4 shuffle + Zstandard, 6 Pcodec) and `data bytes` is the
//! compressed length; `samples` still counts samples. [`decode`] refuses compressed series
//! (a node never accepts them); [`decode_compressed`] (the remote client's) decodes them.

// The codec decodes bytes from the network: no `unwrap`, no unchecked indexing.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;

use crate::storage::compress::Codec;
use crate::telem::{Alignment, DataType, Frame, Series, SeriesError, TimeRange, TimeStamp};

const MAGIC: [u8; 4] = *b"TLMF";
const VERSION: u16 = 1;
const HEADER: usize = 16;
const SERIES_HEADER: usize = 48;
/// Most series one frame may hold.
pub const MAX_SERIES: u32 = 1 << 20;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Shorter than its header says.
    #[error("frame is truncated: needed {needed} bytes at offset {at}, {len} available")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Where.
        at: usize,
        /// Buffer length.
        len: usize,
    },
    /// Not a frame.
    #[error("not a Telemetron frame (bad magic)")]
    BadMagic,
    /// A frame version this build does not read.
    #[error("frame version {0} is not supported (this build reads version 1); upgrade the older side")]
    Version(u16),
    /// A field is out of range.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A series' contents are invalid.
    #[error("invalid series for channel {channel}: {source}")]
    Series {
        /// Channel key.
        channel: u32,
        /// What is wrong.
        source: SeriesError,
    },
}

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// Encoded size of `frame` in bytes.
pub fn encoded_len(frame: &Frame) -> usize {
    HEADER
        + frame
            .series()
            .iter()
            .map(|s| SERIES_HEADER + pad8(data_len(s)) + if s.data_type().is_variable() { 8 * (s.len() + 1) } else { 0 })
            .sum::<usize>()
}

fn data_len(s: &Series) -> usize {
    match s.data_type().density() {
        Some(d) => d * s.len(),
        None => s.value_range().len(),
    }
}

/// A fixed-size series of fewer bytes is never compressed on the wire: its header, the
/// codec's setup and a second wake-up cost more than the bytes saved.
pub const WIRE_COMPRESS_MIN: usize = 16 << 10;

/// Most bytes the compressed series of one frame may decode to together (a claim above it
/// is refused before anything is allocated).
pub const MAX_DECOMPRESSED: usize = 1 << 32;

/// The codec a series of `dt` gets on the wire: Pcodec for 16-, 32- and 64-bit numbers
/// (timestamps included), shuffle + Zstandard level 1 for the other fixed-size types
/// (docs/benchmarks.md, "Compression codecs on sensor signals").
fn wire_codec(dt: DataType) -> Codec {
    if Codec::Pco(4).applies_to(dt) { Codec::Pco(4) } else { Codec::ShuffleZstd(1) }
}

/// The codec of a wire codec tag: only those [`wire_codec`] gives (4 shuffle + Zstandard,
/// 6 Pcodec); the storage's other tags never come over the wire.
fn wire_codec_of(tag: u8) -> Option<Codec> {
    Codec::from_tag(tag).filter(|c| matches!(c, Codec::ShuffleZstd(_) | Codec::Pco(_)))
}

/// The compressed payload of `s` and its codec tag, when compressing it on the wire pays:
/// a fixed-size series of at least [`WIRE_COMPRESS_MIN`] bytes that shrinks by at least
/// a tenth.
fn compressed(s: &Series) -> Option<(u8, Bytes)> {
    let size = s.data_type().density()?;
    let raw = size.checked_mul(s.len())?;
    if raw < WIRE_COMPRESS_MIN {
        return None;
    }
    let codec = wire_codec(s.data_type());
    let c = codec.compress(s).ok()?;
    (c.len() < raw - raw / 10).then(|| (codec.tag(), Bytes::from(c)))
}

/// Encode `frame` into one buffer.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(frame));
    encode_into(frame, &mut out);
    out
}

/// Append the encoding of `frame` to `out`.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    encode_series(frame, out, false);
}

/// The encoding of `frame` as a list of buffers whose concatenation is [`encode`]'s
/// output: series data of at least [`SHARE_MIN`] bytes is shared with the frame (no copy;
/// for a read, the mapped segment files), headers and small series are copied. For
/// sending a large frame without building it in memory.
pub fn encode_chunks(frame: &Frame) -> Vec<Bytes> {
    encode_chunks_for(frame, false)
}

/// [`encode_chunks`], compressing the series where it pays when `compress` (the receiver
/// asked for it): what the node sends a client that sent the
/// [`COMPRESS_HEADER`](super::COMPRESS_HEADER). The length is the chunks' total.
pub fn encode_chunks_for(frame: &Frame, compress: bool) -> Vec<Bytes> {
    let mut c = Chunks { cur: Vec::new(), out: Vec::new() };
    encode_series(frame, &mut c, compress);
    c.flush();
    c.out
}

/// [`encode`], compressing the series where it pays when `compress` (see
/// [`encode_chunks_for`]).
pub fn encode_for(frame: &Frame, compress: bool) -> Vec<u8> {
    if !compress {
        return encode(frame);
    }
    let mut out = Vec::new();
    encode_series(frame, &mut out, true);
    out
}

/// Series data at least this large is shared by [`encode_chunks`] rather than copied.
pub const SHARE_MIN: usize = 64 << 10;

/// Where encoded bytes go: copied, or shared when the sink can keep a reference.
trait Sink {
    fn put(&mut self, b: &[u8]);
    fn share(&mut self, b: Bytes) {
        self.put(&b);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

struct Chunks {
    cur: Vec<u8>,
    out: Vec<Bytes>,
}

impl Chunks {
    fn flush(&mut self) {
        if !self.cur.is_empty() {
            self.out.push(Bytes::from(std::mem::take(&mut self.cur)));
        }
    }
}

impl Sink for Chunks {
    fn put(&mut self, b: &[u8]) {
        self.cur.extend_from_slice(b);
    }
    fn share(&mut self, b: Bytes) {
        if b.len() < SHARE_MIN {
            return self.put(&b);
        }
        self.flush();
        self.out.push(b);
    }
}

/// The one encoder; with `compress`, each series that pays goes out compressed
/// ([`compressed`]).
fn encode_series(frame: &Frame, out: &mut impl Sink, compress: bool) {
    out.put(&MAGIC);
    out.put(&VERSION.to_le_bytes());
    out.put(&0u16.to_le_bytes());
    out.put(&(frame.len() as u32).to_le_bytes());
    out.put(&0u32.to_le_bytes());
    for (k, s) in frame.iter() {
        let (tag, data) = match compress.then(|| compressed(s)).flatten() {
            Some((tag, c)) => (tag, c),
            None if s.data_type().is_variable() => (0, s.data().slice(s.value_range())),
            None => (0, s.data().clone()),
        };
        let dl = data.len();
        debug_assert!(tag != 0 || dl == data_len(s));
        out.put(&k.to_le_bytes());
        out.put(&[s.data_type().tag(), tag, 0, 0]);
        out.put(&(s.len() as u64).to_le_bytes());
        out.put(&s.time_range().start.0.to_le_bytes());
        out.put(&s.time_range().end.0.to_le_bytes());
        out.put(&s.alignment().0.to_le_bytes());
        out.put(&(dl as u64).to_le_bytes());
        out.share(data);
        out.put([0u8; 8].get(..pad8(dl) - dl).expect("pad8 pads by less than 8 bytes"));
        if s.data_type().is_variable() {
            let o = s.offsets_u64();
            let base = o.first().copied().unwrap_or(0);
            for &x in o {
                out.put(&(x - base).to_le_bytes());
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let s = self.at.checked_add(n).and_then(|end| self.buf.get(self.at..end)).ok_or(CodecError::Truncated {
            needed: n,
            at: self.at,
            len: self.buf.len(),
        })?;
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        self.array().map(u64::from_le_bytes)
    }
}

/// Decode a frame from `buf`, sharing its memory where alignment allows. Compressed series
/// are refused: a node decodes what clients send with this.
///
/// # Errors
/// [`CodecError`] for anything malformed.
pub fn decode(buf: Bytes) -> Result<Frame, CodecError> {
    decode_with(buf, false)
}

/// [`decode`], also decompressing compressed series (what a node sends a client that
/// asked for compression). Raw series still share `buf`.
///
/// # Errors
/// [`CodecError`] for anything malformed, compressed bytes that do not decode to the
/// samples the header claims included.
pub fn decode_compressed(buf: Bytes) -> Result<Frame, CodecError> {
    decode_with(buf, true)
}

fn decode_with(buf: Bytes, allow_compressed: bool) -> Result<Frame, CodecError> {
    let mut r = Reader { buf: &buf, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let _flags = r.u16()?;
    let count = r.u32()?;
    let _ = r.u32()?;
    if count > MAX_SERIES {
        return Err(CodecError::Malformed(format!("{count} series exceeds the limit of {MAX_SERIES}")));
    }
    // Each series needs at least its header: reject absurd counts before allocating.
    if (count as usize).saturating_mul(SERIES_HEADER) > buf.len() {
        return Err(CodecError::Truncated { needed: count as usize * SERIES_HEADER, at: HEADER, len: buf.len() });
    }
    let mut frame = Frame::with_capacity(count as usize);
    let mut decoded = 0usize;
    for _ in 0..count {
        let key = r.u32()?;
        let [tag, codec_tag, r0, r1] = r.array::<4>()?;
        let dt = DataType::from_tag(tag).ok_or_else(|| CodecError::Malformed(format!("unknown data type tag {tag} for channel {key}")))?;
        if (r0, r1) != (0, 0) {
            return Err(CodecError::Malformed(format!("channel {key}: reserved header bytes are not zero")));
        }
        let codec = match codec_tag {
            0 => None,
            _ if !allow_compressed => {
                return Err(CodecError::Malformed(format!(
                    "channel {key}: a compressed series (codec {codec_tag}); a node takes raw series only (compression is for what it sends back)"
                )));
            }
            _ if dt.is_variable() => return Err(CodecError::Malformed(format!("channel {key}: {dt} series are never compressed"))),
            t => Some(wire_codec_of(t).ok_or_else(|| {
                CodecError::Malformed(format!("channel {key}: codec tag {t} is not one the wire uses (4 or 6); upgrade this client"))
            })?),
        };
        let samples = r.u64()?;
        let start = r.u64()? as i64;
        let end = r.u64()? as i64;
        let alignment = r.u64()?;
        let dl = r.u64()?;
        let dl = usize::try_from(dl).map_err(|_| CodecError::Malformed("data length overflows".into()))?;
        // Checked before any arithmetic on it: a huge length must not overflow the padding.
        if dl > buf.len() {
            return Err(CodecError::Truncated { needed: dl, at: r.at, len: buf.len() });
        }
        let samples = usize::try_from(samples).map_err(|_| CodecError::Malformed("sample count overflows".into()))?;
        if let (Some(codec), Some(d)) = (codec, dt.density()) {
            // The frame's series together decode to at most MAX_DECOMPRESSED bytes.
            decoded = samples.checked_mul(d).and_then(|n| n.checked_add(decoded)).filter(|&n| n <= MAX_DECOMPRESSED).ok_or_else(|| {
                CodecError::Malformed(format!(
                    "channel {key}: {samples} compressed samples take the frame past {MAX_DECOMPRESSED} bytes decoded"
                ))
            })?;
            let data_at = r.at;
            r.take(pad8(dl))?;
            let series = codec
                .decompress(dt, samples, buf.get(data_at..data_at + dl).unwrap_or_default())
                .map_err(|e| CodecError::Malformed(format!("channel {key}: {e}")))?;
            frame.push(key, series.with_time_range(TimeRange::new(TimeStamp(start), TimeStamp(end))).with_alignment(Alignment(alignment)));
            continue;
        }
        if let Some(d) = dt.density()
            && samples.checked_mul(d) != Some(dl)
        {
            return Err(CodecError::Malformed(format!(
                "channel {key}: {samples} {dt} samples need {} bytes, header says {dl}",
                samples.saturating_mul(d)
            )));
        }
        let data_at = r.at;
        r.take(pad8(dl))?;
        let data = buf.slice(data_at..data_at + dl);
        let series = match dt.density() {
            Some(_) => Series::from_bytes(dt, data),
            None => {
                let olen = samples
                    .checked_add(1)
                    .and_then(|n| n.checked_mul(8))
                    .ok_or_else(|| CodecError::Malformed("offset count overflows".into()))?;
                let off_at = r.at;
                r.take(olen)?;
                let offsets = buf.slice(off_at..off_at + olen);
                Series::from_variable(dt, data, offsets)
            }
        }
        .map_err(|source| CodecError::Series { channel: key, source })?;
        frame.push(key, series.with_time_range(TimeRange::new(TimeStamp(start), TimeStamp(end))).with_alignment(Alignment(alignment)));
    }
    if r.at != buf.len() {
        return Err(CodecError::Malformed(format!("{} trailing bytes after the last series", buf.len() - r.at)));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_frame() -> Frame {
        Frame::new()
            .with(1, Series::timestamps(vec![1, 2, 3]).with_time_range(TimeRange::from_nanos(1, 4)).with_alignment(Alignment::new(2, 7)))
            .with(2, Series::from_vec(vec![1.5f64, -2.0, 3.25]))
            .with(3, Series::strings(&["a", "", "ccc"]).slice(1..3).unwrap())
            .with(4, Series::json(&["{\"x\":1}"]).unwrap())
            .with(5, Series::bools(&[true, false]))
            .with(6, Series::uuids(&[uuid::Uuid::nil()]))
            .with(7, Series::from_vec(Vec::<u16>::new()))
    }

    #[test]
    fn chunks_concatenate_to_the_encoding_and_share_large_data() {
        let big: Vec<f64> = (0..20_000).map(f64::from).collect();
        let f = sample_frame().with(8, Series::from_vec(big)).with(9, Series::strings(&["x".repeat(SHARE_MIN)]));
        let chunks = encode_chunks(&f);
        assert_eq!(chunks.concat(), encode(&f));
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), encoded_len(&f));
        // The two large series are chunks of their own, over the frame's own memory.
        let shared: Vec<&Bytes> = chunks.iter().filter(|c| c.len() >= SHARE_MIN).collect();
        assert_eq!(shared.len(), 2);
        assert_eq!(shared[0].as_ptr(), f.get(8).next().unwrap().data().as_ptr());
        assert!(chunks.len() <= 5, "headers and small series are merged: {} chunks", chunks.len());
        assert!(encode_chunks(&Frame::new()).concat() == encode(&Frame::new()));
    }

    #[test]
    fn round_trip_keeps_everything() {
        let f = sample_frame();
        let enc = encode(&f);
        assert_eq!(enc.len(), encoded_len(&f));
        let back = decode(Bytes::from(enc)).unwrap();
        assert_eq!(back, f);
        for ((ka, a), (kb, b)) in f.iter().zip(back.iter()) {
            assert_eq!(ka, kb);
            assert_eq!(a.time_range(), b.time_range());
            assert_eq!(a.alignment(), b.alignment());
        }
    }

    #[test]
    fn decode_shares_aligned_buffers() {
        let f = Frame::new().with(9, Series::from_vec(vec![1.0f64; 100]));
        let enc = Bytes::from(encode(&f));
        let base = enc.as_ptr() as usize;
        let back = decode(enc.clone()).unwrap();
        let p = back.series()[0].data().as_ptr() as usize;
        if base.is_multiple_of(8) {
            assert_eq!(p, base + HEADER + SERIES_HEADER, "aligned input must not be copied");
        }
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(decode(Bytes::from_static(b"XXXX")), Err(CodecError::BadMagic));
        let mut enc = encode(&sample_frame());
        enc.truncate(enc.len() - 3);
        assert!(matches!(decode(Bytes::from(enc)), Err(CodecError::Truncated { .. })));
        let mut enc = encode(&Frame::new().with(1, Series::from_vec(vec![1u8])));
        enc[HEADER + 4] = 99;
        assert!(matches!(decode(Bytes::from(enc)), Err(CodecError::Malformed(_))));
        let mut enc = encode(&Frame::new());
        enc[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(Bytes::from(enc)).is_err());
        let mut enc = encode(&Frame::new().with(1, Series::strings(&["ab"])));
        let n = enc.len();
        enc[n - 8..].copy_from_slice(&100u64.to_le_bytes());
        assert!(matches!(decode(Bytes::from(enc)), Err(CodecError::Series { .. })));
    }

    /// A frame with one series of each kind the wire compression treats differently.
    fn sensor_frame() -> Frame {
        let n = 20_000;
        let adc: Vec<f64> = (0..n).map(|i| ((f64::from(i) * 0.01).sin() * 20_000.0 + 32_768.0).round() * (100.0 / 65_535.0)).collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        Frame::new()
            .with(1, Series::timestamps((0..i64::from(n)).map(|i| 1_000_000 + i * 1_000).collect()).with_alignment(Alignment::new(3, 40)))
            .with(
                2,
                Series::from_vec(adc).with_time_range(TimeRange::from_nanos(1_000_000, 21_000_000)).with_alignment(Alignment::new(3, 40)),
            )
            .with(3, Series::from_vec((0..50_000u32).map(|i| (i / 250 % 4) as u8 * 60).collect::<Vec<u8>>()))
            .with(4, Series::from_vec(noise))
            .with(5, Series::from_vec(vec![1.5f64; 100]))
            .with(6, Series::strings(&vec!["valve open"; 5_000]))
    }

    /// The codec tag of each series of an encoded frame, in order.
    fn codec_tags(enc: &[u8]) -> Vec<u8> {
        let mut r = Reader { buf: enc, at: 8 };
        let count = r.u32().unwrap();
        r.at = HEADER;
        let mut tags = Vec::new();
        for _ in 0..count {
            let at = r.at;
            let dt = DataType::from_tag(enc[at + 4]).unwrap();
            tags.push(enc[at + 5]);
            let samples = u64::from_le_bytes(enc[at + 8..at + 16].try_into().unwrap()) as usize;
            let dl = u64::from_le_bytes(enc[at + 40..at + 48].try_into().unwrap()) as usize;
            r.at = at + SERIES_HEADER + pad8(dl) + if dt.is_variable() { 8 * (samples + 1) } else { 0 };
        }
        tags
    }

    #[test]
    fn compressed_frames_decode_to_the_same_series_and_only_what_pays_is_compressed() {
        let f = sensor_frame();
        let raw = encode(&f);
        let packed = encode_for(&f, true);
        assert_eq!(encode_chunks_for(&f, true).concat(), packed, "chunks concatenate to the encoding");
        // Timestamps and the ADC signal: Pcodec (6); valve steps in u8: shuffle + Zstandard
        // (4); random bits, a series under 16 KiB and strings: raw.
        assert_eq!(codec_tags(&packed), vec![6, 6, 4, 0, 0, 0]);
        assert_eq!(codec_tags(&raw), vec![0; 6]);
        let back = decode_compressed(Bytes::from(packed.clone())).unwrap();
        assert_eq!(back, f);
        for ((ka, a), (kb, b)) in f.iter().zip(back.iter()) {
            assert_eq!((ka, a.time_range(), a.alignment()), (kb, b.time_range(), b.alignment()));
        }
        // What stays raw costs what it did; the 370,000 bytes of the other three series
        // shrink to less than a tenth.
        let kept: Frame = f.iter().filter(|(k, _)| *k >= 4).map(|(k, s)| (k, s.clone())).collect();
        let shrunk = packed.len() - encode(&kept).len();
        assert!(shrunk < 37_000, "{shrunk} bytes for the compressed series ({} in all, from {})", packed.len(), raw.len());
        // A raw frame decodes the same either way.
        assert_eq!(decode_compressed(Bytes::from(raw)).unwrap(), f);
    }

    #[test]
    fn a_node_refuses_compressed_series_and_damage_is_an_error() {
        let packed = encode_for(&sensor_frame(), true);
        let e = decode(Bytes::from(packed.clone())).unwrap_err();
        assert!(matches!(&e, CodecError::Malformed(m) if m.contains("raw series only")), "{e}");
        // A compressed series claiming more samples than it holds, or more than the limit.
        for claim in [20_001u64, u64::MAX / 8, (MAX_DECOMPRESSED as u64 / 8) + 1] {
            let mut bad = packed.clone();
            bad[HEADER + 8..HEADER + 16].copy_from_slice(&claim.to_le_bytes());
            assert!(matches!(decode_compressed(Bytes::from(bad)), Err(CodecError::Malformed(_))), "claim {claim}");
        }
        // An unknown codec tag, and a codec on a string series.
        let mut bad = packed.clone();
        bad[HEADER + 5] = 200;
        assert!(matches!(decode_compressed(Bytes::from(bad)), Err(CodecError::Malformed(m)) if m.contains("not one the wire uses")));
        // Storage codecs the wire never uses (1 LZ4, 5 delta-of-delta) are refused too.
        for t in [1u8, 2, 3, 5] {
            let mut bad = packed.clone();
            bad[HEADER + 5] = t;
            assert!(decode_compressed(Bytes::from(bad)).is_err(), "tag {t}");
        }
        // Two series whose claims pass the limit together, not apart: the second is refused
        // before anything is allocated for it.
        let two =
            encode_for(&Frame::new().with(1, Series::from_vec(vec![1.0f64; 20_000])).with(2, Series::from_vec(vec![2.0f64; 20_000])), true);
        let mut bad = two.clone();
        let second = HEADER + SERIES_HEADER + pad8(u64::from_le_bytes(two[HEADER + 40..HEADER + 48].try_into().unwrap()) as usize);
        let rest = (MAX_DECOMPRESSED / 8 - 20_000 + 1) as u64;
        bad[second + 8..second + 16].copy_from_slice(&rest.to_le_bytes());
        assert!(matches!(decode_compressed(Bytes::from(bad)), Err(CodecError::Malformed(m)) if m.contains("past")));
        let mut reserved = packed.clone();
        reserved[HEADER + 6] = 1;
        assert!(decode_compressed(Bytes::from(reserved)).is_err(), "reserved bytes must be zero");
        let mut strings = encode(&Frame::new().with(1, Series::strings(&["ab"])));
        strings[HEADER + 5] = 4;
        assert!(matches!(decode_compressed(Bytes::from(strings)), Err(CodecError::Malformed(m)) if m.contains("never compressed")));
    }

    proptest! {
        #[test]
        fn never_panics_on_mutated_compressed_frames(idx in any::<usize>(), byte in any::<u8>()) {
            let mut enc = encode_for(&sensor_frame().with(7, Series::from_vec(vec![7u16; 9_000])), true);
            let i = idx % enc.len();
            enc[i] = byte;
            let _ = decode_compressed(Bytes::from(enc));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(Bytes::from(data));
        }

        #[test]
        fn never_panics_on_mutated_frames(idx in any::<usize>(), byte in any::<u8>()) {
            let mut enc = encode(&sample_frame());
            let i = idx % enc.len();
            enc[i] = byte;
            let _ = decode(Bytes::from(enc));
        }

        #[test]
        fn never_panics_on_huge_lengths(at in 0usize..6, len in any::<u64>()) {
            // The data length field of each series, set to anything (fuzzing found
            // usize::MAX - 3 overflowing the padding computation).
            let mut enc = encode(&Frame::new().with(1, Series::strings(&["ab"])).with(2, Series::from_vec(vec![1u8])));
            let series_at = [HEADER, HEADER + SERIES_HEADER + 8 + 16][at % 2];
            enc[series_at + 40..series_at + 48].copy_from_slice(&len.to_le_bytes());
            let _ = decode(Bytes::from(enc));
        }

        #[test]
        fn round_trips_random_numeric_series(v in proptest::collection::vec(any::<i64>(), 0..300), w in proptest::collection::vec(any::<u32>(), 0..300)) {
            let f = Frame::new().with(1, Series::from_vec(v)).with(2, Series::from_vec(w));
            prop_assert_eq!(decode(Bytes::from(encode(&f))).unwrap(), f);
        }

        #[test]
        fn round_trips_random_strings(v in proptest::collection::vec(".{0,12}", 0..50)) {
            let f = Frame::new().with(3, Series::strings(&v));
            prop_assert_eq!(decode(Bytes::from(encode(&f))).unwrap(), f);
        }
    }
}
