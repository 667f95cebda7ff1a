//! Compression codecs for fixed-size series (issue 12, item 3).
//!
//! One place that turns a series into compressed bytes and back, for the codecs measured
//! by `telemetron bench codecs` on realistic sensor signals (docs/benchmarks.md): LZ4
//! (`lz4_flex`), Zstandard (`zstd`), either after a byte shuffle (byte `k` of every sample
//! together, as Blosc does), delta-of-delta integers under Zstandard for timestamps and
//! counters, and Pcodec (`pco`), which models numeric series (deltas, float multipliers,
//! quantization) itself. Fresh data keeps the raw fast path; compaction is meant to apply
//! the codec a channel chose, so this module holds no policy.
//!
//! Decompression checks what it is given and returns [`CompressError`], never panics:
//! compressed bytes come from disk or the network.

use std::fmt;

use crate::channel::Compression;
use crate::telem::{DataType, Sample, Series};

/// A compression codec for a fixed-size series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// The samples as they are.
    Raw,
    /// LZ4 block format over the raw bytes.
    Lz4,
    /// LZ4 over the byte-shuffled samples.
    ShuffleLz4,
    /// Zstandard at a level (1 fastest, 22 smallest) over the raw bytes.
    Zstd(i32),
    /// Zstandard over the byte-shuffled samples.
    ShuffleZstd(i32),
    /// Integers and timestamps: first value, first delta, then zigzag delta-of-deltas, all
    /// as little-endian u64, under Zstandard at a level. Regular timestamps become zeros.
    DeltaDeltaZstd(i32),
    /// Pcodec at a level (0–12; 8 is its default).
    Pco(usize),
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::Raw => write!(f, "raw"),
            Codec::Lz4 => write!(f, "lz4"),
            Codec::ShuffleLz4 => write!(f, "shuffle+lz4"),
            Codec::Zstd(l) => write!(f, "zstd-{l}"),
            Codec::ShuffleZstd(l) => write!(f, "shuffle+zstd-{l}"),
            Codec::DeltaDeltaZstd(l) => write!(f, "dod+zstd-{l}"),
            Codec::Pco(l) => write!(f, "pco-{l}"),
        }
    }
}

/// Why compressing or decompressing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    /// The codec does not apply to the data type.
    #[error("codec {codec} does not apply to {data_type} series; choose raw, lz4 or zstd for it")]
    Unsupported {
        /// The codec asked for.
        codec: String,
        /// The series' type.
        data_type: DataType,
    },
    /// Compressed bytes that do not decode to the expected samples.
    #[error("{codec} data does not decode to {samples} {data_type} samples: {reason}")]
    Corrupt {
        /// The codec.
        codec: String,
        /// The expected type.
        data_type: DataType,
        /// The expected count.
        samples: usize,
        /// What went wrong.
        reason: String,
    },
}

/// What decides a channel's codec besides its choice: its sample type and kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelShape {
    pub(crate) data_type: DataType,
    pub(crate) is_index: bool,
    pub(crate) is_virtual: bool,
}

impl From<&crate::channel::Channel> for ChannelShape {
    fn from(ch: &crate::channel::Channel) -> ChannelShape {
        ChannelShape { data_type: ch.data_type, is_index: ch.is_index(), is_virtual: ch.is_virtual() }
    }
}

impl From<&crate::channel::NewChannel> for ChannelShape {
    fn from(spec: &crate::channel::NewChannel) -> ChannelShape {
        ChannelShape { data_type: spec.data_type, is_index: spec.is_index, is_virtual: spec.is_virtual }
    }
}

impl Codec {
    /// The tag stored in a record header (storage/format.rs): 0 is raw. Levels are not
    /// stored; decoding does not need them.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Codec::Raw => 0,
            Codec::Lz4 => 1,
            Codec::ShuffleLz4 => 2,
            Codec::Zstd(_) => 3,
            Codec::ShuffleZstd(_) => 4,
            Codec::DeltaDeltaZstd(_) => 5,
            Codec::Pco(_) => 6,
        }
    }

    /// The codec of a stored tag; `None` for a tag this build does not know.
    pub(crate) fn from_tag(tag: u8) -> Option<Codec> {
        Some(match tag {
            0 => Codec::Raw,
            1 => Codec::Lz4,
            2 => Codec::ShuffleLz4,
            3 => Codec::Zstd(3),
            4 => Codec::ShuffleZstd(3),
            5 => Codec::DeltaDeltaZstd(3),
            6 => Codec::Pco(4),
            _ => return None,
        })
    }

    /// The codec compaction applies by default to a channel of `dt`, chosen by `telemetron
    /// bench codecs` (docs/benchmarks.md): Pcodec for 16-, 32- and 64-bit numbers, which
    /// won on every realistic signal measured; raw for the rest. Index channels stay raw:
    /// a time lookup reads inside them, and raw keeps that a binary search over mapped
    /// bytes.
    pub(crate) fn default_for(dt: DataType, is_index: bool) -> Codec {
        if !is_index && Codec::Pco(4).applies_to(dt) { Codec::Pco(4) } else { Codec::Raw }
    }

    /// The codec compaction gives a channel that chose `choice`, with `engine_default` the
    /// engine's `StorageOptions::compress`. The one place that decides which channels take
    /// which codec: channel creation refuses what this refuses, compaction applies the rest.
    ///
    /// # Errors
    /// What to change, when the choice does not fit the channel (a virtual or index channel,
    /// or a type the codec does not encode).
    pub(crate) fn for_channel(choice: Compression, shape: ChannelShape, engine_default: bool) -> Result<Codec, String> {
        let ChannelShape { data_type: dt, is_index, is_virtual } = shape;
        let codec = match choice {
            Compression::Default => {
                return Ok(if engine_default && !is_virtual { Codec::default_for(dt, is_index) } else { Codec::Raw });
            }
            Compression::Off => return Ok(Codec::Raw),
            Compression::Pcodec => Codec::Pco(4),
            Compression::Zstd => Codec::ShuffleZstd(1),
            Compression::Lz4 => Codec::ShuffleLz4,
        };
        if is_virtual {
            return Err(format!("virtual channels are never stored, so compression \"{choice}\" does not apply; drop it"));
        }
        if is_index {
            return Err(format!(
                "index channels stay raw (a time lookup binary-searches their bytes), so compression \"{choice}\" does not apply; drop it"
            ));
        }
        if !codec.applies_to(dt) {
            let instead = if dt.is_variable() {
                "variable-length samples are stored raw; drop the compression"
            } else {
                "use \"zstd\" or \"lz4\", which take any fixed-size type"
            };
            return Err(format!("compression \"{choice}\" does not apply to {dt} samples; {instead}"));
        }
        Ok(codec)
    }

    /// True when the codec can encode series of `dt` (every codec needs a fixed-size type;
    /// delta-of-delta needs integers or timestamps; Pcodec needs 16-, 32- or 64-bit numbers).
    pub fn applies_to(self, dt: DataType) -> bool {
        let Some(size) = dt.density() else { return false };
        match self {
            Codec::Raw | Codec::Lz4 | Codec::Zstd(_) | Codec::ShuffleLz4 | Codec::ShuffleZstd(_) => true,
            Codec::DeltaDeltaZstd(_) => is_integer(dt),
            Codec::Pco(_) => size >= 2 && dt != DataType::Uuid,
        }
    }

    fn unsupported(self, dt: DataType) -> CompressError {
        CompressError::Unsupported { codec: self.to_string(), data_type: dt }
    }

    fn corrupt(self, dt: DataType, samples: usize, reason: impl fmt::Display) -> CompressError {
        CompressError::Corrupt { codec: self.to_string(), data_type: dt, samples, reason: reason.to_string() }
    }

    /// Compress the samples of `s`.
    ///
    /// # Errors
    /// [`CompressError::Unsupported`] for a type the codec does not apply to;
    /// [`CompressError::Corrupt`] if the codec library fails.
    pub fn compress(self, s: &Series) -> Result<Vec<u8>, CompressError> {
        let dt = s.data_type();
        if !self.applies_to(dt) {
            return Err(self.unsupported(dt));
        }
        let raw = s.data().as_ref();
        let size = dt.density().unwrap_or(1);
        let fail = |e: std::io::Error| self.corrupt(dt, s.len(), e);
        Ok(match self {
            Codec::Raw => raw.to_vec(),
            Codec::Lz4 => lz4_flex::block::compress(raw),
            Codec::ShuffleLz4 => lz4_flex::block::compress(&shuffle(raw, size)),
            Codec::Zstd(level) => zstd::bulk::compress(raw, level).map_err(fail)?,
            Codec::ShuffleZstd(level) => zstd::bulk::compress(&shuffle(raw, size), level).map_err(fail)?,
            Codec::DeltaDeltaZstd(level) => zstd::bulk::compress(&delta_delta(&widen(s)), level).map_err(fail)?,
            Codec::Pco(level) => pco_compress(s, level).map_err(|e| self.corrupt(dt, s.len(), e))?,
        })
    }

    /// Decompress `samples` samples of `dt` from `data`, into a series whose buffer is
    /// aligned for `dt` (so it views as a slice without a copy).
    ///
    /// # Errors
    /// [`CompressError::Corrupt`] when `data` does not decode to exactly that many samples.
    pub fn decompress(self, dt: DataType, samples: usize, data: &[u8]) -> Result<Series, CompressError> {
        if !self.applies_to(dt) {
            return Err(self.unsupported(dt));
        }
        let size = dt.density().unwrap_or(1);
        let bytes = samples.checked_mul(size).ok_or_else(|| self.corrupt(dt, samples, "too many samples"))?;
        let words = samples.checked_mul(8).ok_or_else(|| self.corrupt(dt, samples, "too many samples"))?;
        // LZ4 allocates its output up front and never expands more than 255:1, so a claimed
        // size beyond that is damage: refuse it before allocating. (Zstandard reserves
        // fallibly and pcodec bounds its own allocation.)
        if matches!(self, Codec::Lz4 | Codec::ShuffleLz4) && bytes / 255 > data.len().saturating_add(64) {
            return Err(self.corrupt(dt, samples, format!("{} bytes cannot hold {samples} samples", data.len())));
        }
        let bad = |e: &dyn fmt::Display| self.corrupt(dt, samples, e);
        let raw: Vec<u8> = match self {
            Codec::Raw => data.to_vec(),
            Codec::Lz4 => lz4_flex::block::decompress(data, bytes).map_err(|e| bad(&e))?,
            Codec::ShuffleLz4 => unshuffle(&lz4_flex::block::decompress(data, bytes).map_err(|e| bad(&e))?, size),
            Codec::Zstd(_) => zstd::bulk::decompress(data, bytes).map_err(|e| bad(&e))?,
            Codec::ShuffleZstd(_) => unshuffle(&zstd::bulk::decompress(data, bytes).map_err(|e| bad(&e))?, size),
            Codec::DeltaDeltaZstd(_) => {
                let decoded = zstd::bulk::decompress(data, words).map_err(|e| bad(&e))?;
                if decoded.len() != words {
                    return Err(bad(&format!("{} bytes of deltas for {samples} samples", decoded.len())));
                }
                return narrow(&undelta_delta(&decoded), dt).ok_or_else(|| bad(&"a value out of the type's range"));
            }
            Codec::Pco(_) => return pco_decompress(dt, samples, data).map_err(|e| bad(&e)),
        };
        if raw.len() != bytes {
            return Err(bad(&format!("{} bytes for {bytes}", raw.len())));
        }
        // `from_bytes` copies a misaligned buffer once into an aligned one.
        Series::from_bytes(dt, bytes::Bytes::from(raw)).map_err(|e| bad(&e))
    }
}

fn is_integer(dt: DataType) -> bool {
    matches!(
        dt,
        DataType::U8
            | DataType::U16
            | DataType::U32
            | DataType::U64
            | DataType::I8
            | DataType::I16
            | DataType::I32
            | DataType::I64
            | DataType::Timestamp
    )
}

/// Byte `k` of every sample together, for `k` in `0..size` (a trailing partial sample,
/// which a valid series never has, is dropped).
fn shuffle(raw: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for k in 0..size {
        out.extend(raw.chunks_exact(size).filter_map(|sample| sample.get(k)));
    }
    out
}

fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len() / size;
    let mut out = vec![0u8; n * size];
    for (k, plane) in data.chunks_exact(n.max(1)).take(size).enumerate() {
        for (sample, &b) in out.chunks_exact_mut(size).zip(plane) {
            if let Some(dst) = sample.get_mut(k) {
                *dst = b;
            }
        }
    }
    out
}

/// Integer samples as i64 (u64 reinterpreted: deltas wrap, so they round-trip).
fn widen(s: &Series) -> Vec<i64> {
    let size = s.data_type().density().unwrap_or(8).max(1);
    s.data()
        .chunks_exact(size)
        .map(|b| {
            let mut w = [0u8; 8];
            for (dst, &src) in w.iter_mut().zip(b) {
                *dst = src;
            }
            let v = i64::from_le_bytes(w);
            match s.data_type() {
                DataType::I8 => i64::from(v as i8),
                DataType::I16 => i64::from(v as i16),
                DataType::I32 => i64::from(v as i32),
                _ => v,
            }
        })
        .collect()
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// First value, first delta, then the delta-of-deltas, zigzagged, as little-endian u64.
fn delta_delta(v: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 8);
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for (i, &x) in v.iter().enumerate() {
        let d = x.wrapping_sub(prev);
        let w = if i == 0 { x } else { d.wrapping_sub(prev_d) };
        out.extend_from_slice(&zigzag(w).to_le_bytes());
        prev = x;
        prev_d = if i == 0 { 0 } else { d };
    }
    out
}

fn undelta_delta(words: &[u8]) -> Vec<i64> {
    let mut out = Vec::with_capacity(words.len() / 8);
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for (i, w) in words.chunks_exact(8).enumerate() {
        let w = unzigzag(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        let x = if i == 0 {
            w
        } else {
            let d = prev_d.wrapping_add(w);
            prev_d = d;
            prev.wrapping_add(d)
        };
        out.push(x);
        prev = x;
    }
    out
}

/// i64 values back into a series of `dt`, or None if one does not fit.
fn narrow(v: &[i64], dt: DataType) -> Option<Series> {
    fn cast<T: Sample + TryFrom<i64>>(v: &[i64]) -> Option<Series> {
        v.iter().map(|&x| T::try_from(x).ok()).collect::<Option<Vec<T>>>().map(Series::from_vec)
    }
    match dt {
        DataType::U8 => cast::<u8>(v),
        DataType::U16 => cast::<u16>(v),
        DataType::U32 => cast::<u32>(v),
        DataType::U64 => Some(Series::from_vec(v.iter().map(|&x| x as u64).collect::<Vec<u64>>())),
        DataType::I8 => cast::<i8>(v),
        DataType::I16 => cast::<i16>(v),
        DataType::I32 => cast::<i32>(v),
        DataType::I64 => Some(Series::from_vec(v.to_vec())),
        DataType::Timestamp => Some(Series::timestamps(v.to_vec())),
        _ => None,
    }
}

fn pco_compress(s: &Series, level: usize) -> Result<Vec<u8>, String> {
    fn go<T: Sample + pco::data_types::Number>(s: &Series, level: usize) -> Result<Vec<u8>, String> {
        let v = s.as_slice::<T>().map_err(|e| e.to_string())?;
        pco::standalone::simple_compress(v, &pco::ChunkConfig::default().with_compression_level(level)).map_err(|e| e.to_string())
    }
    match s.data_type() {
        DataType::U16 => go::<u16>(s, level),
        DataType::U32 => go::<u32>(s, level),
        DataType::U64 => go::<u64>(s, level),
        DataType::I16 => go::<i16>(s, level),
        DataType::I32 => go::<i32>(s, level),
        DataType::I64 | DataType::Timestamp => go::<i64>(s, level),
        DataType::F32 => go::<f32>(s, level),
        DataType::F64 => go::<f64>(s, level),
        dt => Err(format!("pco does not take {dt}")),
    }
}

fn pco_decompress(dt: DataType, samples: usize, data: &[u8]) -> Result<Series, String> {
    // Chunk by chunk, each chunk's count checked against what is left of `samples` before
    // it is decoded: the bytes cannot make it allocate more than the caller allowed (a
    // chunk of one repeated value is a few bytes for millions of samples).
    fn go<T: Sample + pco::data_types::Number + Default>(samples: usize, data: &[u8]) -> Result<Vec<T>, String> {
        use pco::standalone::{DecompressorItem, FileDecompressor};
        let (fd, mut src) = FileDecompressor::new(data).map_err(|e| e.to_string())?;
        // Grown chunk by chunk (a chunk holds at most 2^24 values), never to a claimed count.
        let mut v: Vec<T> = Vec::new();
        while let DecompressorItem::Chunk(mut cd) = fd.chunk_decompressor::<T, _>(src).map_err(|e| e.to_string())? {
            let (at, n) = (v.len(), cd.n());
            if n > samples - at {
                return Err(format!("{} or more samples decoded", at + n));
            }
            v.resize(at + n, T::default());
            let p = cd.read(v.get_mut(at..).unwrap_or_default()).map_err(|e| e.to_string())?;
            if p.n_processed != n {
                return Err(format!("a chunk of {n} samples decoded {}", p.n_processed));
            }
            src = cd.into_src();
        }
        if v.len() == samples { Ok(v) } else { Err(format!("{} samples decoded", v.len())) }
    }
    Ok(match dt {
        DataType::U16 => Series::from_vec(go::<u16>(samples, data)?),
        DataType::U32 => Series::from_vec(go::<u32>(samples, data)?),
        DataType::U64 => Series::from_vec(go::<u64>(samples, data)?),
        DataType::I16 => Series::from_vec(go::<i16>(samples, data)?),
        DataType::I32 => Series::from_vec(go::<i32>(samples, data)?),
        DataType::I64 => Series::from_vec(go::<i64>(samples, data)?),
        DataType::Timestamp => Series::timestamps(go::<i64>(samples, data)?),
        DataType::F32 => Series::from_vec(go::<f32>(samples, data)?),
        DataType::F64 => Series::from_vec(go::<f64>(samples, data)?),
        dt => return Err(format!("pco does not take {dt}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codecs() -> Vec<Codec> {
        vec![Codec::Raw, Codec::Lz4, Codec::ShuffleLz4, Codec::Zstd(1), Codec::ShuffleZstd(3), Codec::DeltaDeltaZstd(1), Codec::Pco(8)]
    }

    fn series() -> Vec<Series> {
        let n = 5_000;
        vec![
            Series::from_vec((0..n).map(|i| (f64::from(i) / 50.0).sin() * 3.0 + 1e-9 * f64::from(i % 7)).collect::<Vec<f64>>()),
            Series::from_vec((0..n).map(|i| i as f32 * 0.5).collect::<Vec<f32>>()),
            Series::timestamps((0..i64::from(n)).map(|i| 1_700_000_000_000_000_000 + i * 1_000_000 + (i % 3) * 17).collect()),
            Series::from_vec((0..n).map(|i| u64::MAX - u64::from(i as u32 * 3)).collect::<Vec<u64>>()),
            Series::from_vec((0..n).map(|i| (i % 200) as i8 - 100).collect::<Vec<i8>>()),
            Series::from_vec((0..n).map(|i| i32::MIN + i * 77).collect::<Vec<i32>>()),
            Series::from_vec(Vec::<f64>::new()),
        ]
    }

    #[test]
    fn tags_round_trip_and_unknown_tags_are_refused() {
        for c in [Codec::Raw, Codec::Lz4, Codec::ShuffleLz4, Codec::Zstd(3), Codec::ShuffleZstd(3), Codec::DeltaDeltaZstd(3), Codec::Pco(4)]
        {
            assert_eq!(Codec::from_tag(c.tag()), Some(c));
        }
        assert_eq!(Codec::from_tag(7), None);
        assert_eq!(Codec::default_for(DataType::F64, false), Codec::Pco(4));
        assert_eq!(Codec::default_for(DataType::Timestamp, true), Codec::Raw);
        assert_eq!(Codec::default_for(DataType::String, false), Codec::Raw);
        assert_eq!(Codec::default_for(DataType::U8, false), Codec::Raw);
    }

    #[test]
    fn every_codec_round_trips_every_type_it_applies_to() {
        for s in series() {
            for c in codecs() {
                if !c.applies_to(s.data_type()) {
                    assert!(matches!(c.compress(&s), Err(CompressError::Unsupported { .. })), "{c} {}", s.data_type());
                    continue;
                }
                let z = c.compress(&s).unwrap_or_else(|e| panic!("{c} {}: {e}", s.data_type()));
                let back = c.decompress(s.data_type(), s.len(), &z).unwrap_or_else(|e| panic!("{c} {}: {e}", s.data_type()));
                assert_eq!(back.data_type(), s.data_type(), "{c}");
                assert!(back.data().as_ref() == s.data().as_ref(), "{c} {}: the samples differ", s.data_type());
                assert_eq!(back.data().as_ptr() as usize % s.data_type().density().unwrap_or(1), 0, "{c}: aligned");
            }
        }
    }

    /// Pcodec decodes into the count the caller gives: a few bytes that hold millions of
    /// samples cannot make a caller that expects ten allocate for millions.
    #[test]
    fn pcodec_decodes_no_more_than_the_count_it_is_given() {
        let s = Series::from_vec(vec![42.0f64; 5_000_000]);
        let z = Codec::Pco(4).compress(&s).unwrap();
        assert!(z.len() < 4096, "{} bytes", z.len());
        let e = Codec::Pco(4).decompress(DataType::F64, 10, &z).unwrap_err();
        assert!(e.to_string().contains("or more"), "{e}");
    }

    #[test]
    fn regular_timestamps_shrink_to_almost_nothing() {
        let s = Series::timestamps((0..100_000).map(|i| 1_700_000_000_000_000_000 + i * 1_000_000).collect());
        for c in [Codec::DeltaDeltaZstd(1), Codec::Pco(8)] {
            let z = c.compress(&s).unwrap();
            assert!(z.len() * 500 < s.data().len(), "{c}: {} bytes for {}", z.len(), s.data().len());
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        for s in series().into_iter().filter(|s| !s.is_empty()) {
            for c in codecs().into_iter().filter(|c| c.applies_to(s.data_type())) {
                let z = c.compress(&s).unwrap();
                for cut in [0, 1, z.len() / 2, z.len().saturating_sub(1)] {
                    let r = c.decompress(s.data_type(), s.len(), &z[..cut]);
                    assert!(matches!(r, Err(CompressError::Corrupt { .. })), "{c} {} cut at {cut}", s.data_type());
                }
                let mut flipped = z.clone();
                for b in flipped.iter_mut().step_by(7) {
                    *b ^= 0x5a;
                }
                // Flipped bits may still decode (to other samples); they must not panic.
                let _ = c.decompress(s.data_type(), s.len(), &flipped);
                assert!(c.decompress(s.data_type(), s.len() + 1, &z).is_err(), "{c}: a wrong count is refused");
                assert!(c.decompress(s.data_type(), s.len() - 1, &z).is_err(), "{c}: a count short of the data is refused");
                for huge in [usize::MAX, usize::MAX / 8, usize::MAX / 8 + 1, 1 << 61, 1 << 40] {
                    assert!(c.decompress(s.data_type(), huge, &z).is_err(), "{c}: {huge} samples are refused");
                }
            }
        }
    }
}
