//! [`Series`]: a typed, immutable run of samples over a shared buffer.

// Series decode untrusted bytes (from files and the network): no `unwrap`, no unchecked
// indexing.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use super::data_type::{DataType, Sample, compatible};
use super::{Alignment, TimeRange};

/// Errors building or viewing a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum SeriesError {
    /// The byte length is not a whole number of samples.
    #[error(
        "{len} bytes is not a whole number of {data_type} samples ({density} bytes each); pass a buffer whose length is a multiple of {density}"
    )]
    #[serde(rename = "ragged")]
    RaggedBuffer {
        /// Buffer length in bytes.
        len: usize,
        /// Declared type.
        data_type: DataType,
        /// Bytes per sample.
        density: usize,
    },
    /// The series was viewed as a Rust type that does not match its data type.
    #[error("series holds {actual} samples, not {requested}; view it as the matching type")]
    TypeMismatch {
        /// The series' data type.
        actual: DataType,
        /// The requested type.
        requested: DataType,
    },
    /// Offsets of a variable-length series are malformed.
    #[error("variable-length offsets are malformed: {reason}")]
    BadOffsets {
        /// What is wrong.
        reason: String,
    },
    /// A string or JSON sample is not valid.
    #[error("sample {index} is not valid {data_type}: {reason}")]
    InvalidValue {
        /// Sample index.
        index: usize,
        /// The data type.
        data_type: DataType,
        /// Why it was rejected.
        reason: String,
    },
    /// An Arrow array or batch cannot become a series, or a series cannot become one.
    #[error("{reason}")]
    Arrow {
        /// What does not convert, and what to do.
        reason: String,
    },
    /// A slice range lies outside the series.
    #[error("range {start}..{end} is outside a series of {len} samples")]
    OutOfBounds {
        /// Requested start.
        start: usize,
        /// Requested end.
        end: usize,
        /// Series length.
        len: usize,
    },
}

impl SeriesError {
    /// Stable code, see [`crate::Error::code`]: every series error is `series.invalid`.
    pub fn code(&self) -> &'static str {
        "series.invalid"
    }

    /// Every code of this enum.
    pub const CODES: &[crate::codes::CodeInfo] = &[crate::codes::CodeInfo::new(
        "series.invalid",
        "a series is malformed (ragged buffer, bad offsets, invalid value, wrong type, out of bounds)",
    )];
}

/// A contiguous, typed, immutable run of samples of one channel.
///
/// The samples live in a reference-counted [`Bytes`] buffer: cloning a series, slicing it,
/// fanning it out to many subscribers or handing it to numpy / typed arrays never copies
/// the samples. Fixed-size samples are little-endian and the buffer is aligned for the
/// sample type. Variable-length series (`string`, `json`, `bytes`) carry `len + 1` `u64`
/// offsets into `data`; sample `i` is `data[offsets[i]..offsets[i + 1]]`.
///
/// A series also carries its [`TimeRange`] (`[first timestamp, last timestamp + 1)` when it
/// was read from storage) and its [`Alignment`].
///
/// # Examples
///
/// ```
/// use telemetron::telem::{DataType, Series};
///
/// let s = Series::from_vec(vec![1.0f64, 2.5, 4.0]);
/// assert_eq!(s.data_type(), DataType::F64);
/// assert_eq!(s.as_slice::<f64>().unwrap(), &[1.0, 2.5, 4.0]);
/// let tail = s.slice(1..3).unwrap(); // shares the buffer
/// assert_eq!(tail.as_slice::<f64>().unwrap(), &[2.5, 4.0]);
/// ```
#[derive(Clone)]
pub struct Series {
    data_type: DataType,
    data: Bytes,
    offsets: Option<Bytes>,
    len: usize,
    time_range: TimeRange,
    alignment: Alignment,
}

/// Owner that lets a `Vec<T>` back a `Bytes` without copying.
struct VecOwner<T: Sample>(Vec<T>);

impl<T: Sample> AsRef<[u8]> for VecOwner<T> {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `T` is a plain numeric type without padding; any initialized `T` is valid
        // as bytes, and the Vec is never mutated while the `Bytes` lives.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), std::mem::size_of_val(self.0.as_slice())) }
    }
}

/// Copy `bytes` into a fresh buffer aligned to 8 bytes.
pub(crate) fn aligned_copy(bytes: &[u8]) -> Bytes {
    aligned_concat(bytes.len(), std::iter::once(bytes))
}

/// Copy `chunks` (`total` bytes together) back to back into one fresh buffer aligned to 8
/// bytes: each byte is written once (no zeroing pass, no intermediate buffer).
///
/// # Panics
/// If the chunks hold more than `total` bytes (a caller bug, checked before any write).
fn aligned_concat<'a>(total: usize, chunks: impl Iterator<Item = &'a [u8]> + Clone) -> Bytes {
    let given: usize = chunks.clone().map(<[u8]>::len).sum();
    assert!(given <= total, "aligned_concat: {given} bytes given for a {total}-byte buffer");
    let words = total.div_ceil(8);
    let mut v: Vec<u64> = Vec::with_capacity(words);
    let dst = v.as_mut_ptr().cast::<u8>();
    let mut at = 0usize;
    for c in chunks {
        // SAFETY: `v` has room for `words * 8 >= total >= at + c.len()` bytes (checked
        // above), and `c` does not overlap the fresh allocation.
        unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), dst.add(at), c.len()) };
        at += c.len();
    }
    // SAFETY: bytes `at..words * 8` are inside the allocation; zeroing them initialises the
    // rest, so all `words` elements are initialised before `set_len`.
    unsafe {
        std::ptr::write_bytes(dst.add(at), 0, words * 8 - at);
        v.set_len(words);
    }
    Bytes::from_owner(VecOwner(v)).slice(0..total)
}

fn natural_align(dt: DataType) -> usize {
    match dt.density() {
        Some(d) if d <= 8 => d,
        _ => 1,
    }
}

impl Series {
    /// A series that takes ownership of `values` without copying them.
    pub fn from_vec<T: Sample>(values: Vec<T>) -> Series {
        let len = values.len();
        Series {
            data_type: T::DATA_TYPE,
            data: Bytes::from_owner(VecOwner(values)),
            offsets: None,
            len,
            time_range: TimeRange::default(),
            alignment: Alignment::default(),
        }
    }

    /// A series with a copy of `values`.
    pub fn from_slice<T: Sample>(values: &[T]) -> Series {
        Series::from_vec(values.to_vec())
    }

    /// A `timestamp` series from nanoseconds since the epoch (no copy).
    pub fn timestamps(nanos: Vec<i64>) -> Series {
        let mut s = Series::from_vec(nanos);
        s.data_type = DataType::Timestamp;
        s
    }

    /// A `bool` series (one byte per sample).
    pub fn bools(values: &[bool]) -> Series {
        let mut s = Series::from_vec(values.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>());
        s.data_type = DataType::Bool;
        s
    }

    /// A `uuid` series.
    pub fn uuids(values: &[uuid::Uuid]) -> Series {
        let mut raw = Vec::with_capacity(values.len() * 16);
        for u in values {
            raw.extend_from_slice(u.as_bytes());
        }
        Series { data_type: DataType::Uuid, len: values.len(), ..Series::empty_of(DataType::Uuid) }.with_data(Bytes::from(raw))
    }

    /// A `string` series.
    pub fn strings<S: AsRef<str>>(values: &[S]) -> Series {
        Series::variable_unchecked(DataType::String, values.iter().map(|s| s.as_ref().as_bytes()))
    }

    /// A `json` series; every value must parse as JSON.
    ///
    /// # Errors
    /// [`SeriesError::InvalidValue`] names the first sample that is not JSON.
    pub fn json<S: AsRef<str>>(values: &[S]) -> Result<Series, SeriesError> {
        let s = Series::variable_unchecked(DataType::Json, values.iter().map(|s| s.as_ref().as_bytes()));
        s.validate()?;
        Ok(s)
    }

    /// A `bytes` series.
    pub fn byte_values<B: AsRef<[u8]>>(values: &[B]) -> Series {
        Series::variable_unchecked(DataType::Bytes, values.iter().map(AsRef::as_ref))
    }

    fn variable_unchecked<'a>(dt: DataType, values: impl Iterator<Item = &'a [u8]>) -> Series {
        let mut data = Vec::new();
        let mut offsets: Vec<u64> = vec![0];
        for v in values {
            data.extend_from_slice(v);
            offsets.push(data.len() as u64);
        }
        let len = offsets.len() - 1;
        Series {
            data_type: dt,
            data: Bytes::from(data),
            offsets: Some(Bytes::from_owner(VecOwner(offsets))),
            len,
            time_range: TimeRange::default(),
            alignment: Alignment::default(),
        }
    }

    /// An empty series of `dt`.
    pub fn empty_of(dt: DataType) -> Series {
        Series {
            data_type: dt,
            data: Bytes::new(),
            offsets: dt.is_variable().then(|| Bytes::from_owner(VecOwner(vec![0u64]))),
            len: 0,
            time_range: TimeRange::default(),
            alignment: Alignment::default(),
        }
    }

    fn with_data(mut self, data: Bytes) -> Series {
        self.data = data;
        self
    }

    /// A fixed-size series over raw little-endian bytes. The buffer is shared, not copied,
    /// unless its address is not aligned for the type (then it is copied once).
    ///
    /// # Errors
    /// [`SeriesError::RaggedBuffer`] if the length is not a multiple of the sample size;
    /// variable-length types must use [`Series::from_variable`].
    pub fn from_bytes(dt: DataType, data: Bytes) -> Result<Series, SeriesError> {
        let density = match dt.density() {
            Some(d) => d,
            None => return Err(SeriesError::BadOffsets { reason: "variable-length types need offsets; use Series::from_variable".into() }),
        };
        if !data.len().is_multiple_of(density) {
            return Err(SeriesError::RaggedBuffer { len: data.len(), data_type: dt, density });
        }
        let data = if !(data.as_ptr() as usize).is_multiple_of(natural_align(dt)) { aligned_copy(&data) } else { data };
        let s = Series {
            data_type: dt,
            len: data.len() / density,
            data,
            offsets: None,
            time_range: TimeRange::default(),
            alignment: Alignment::default(),
        };
        if dt == DataType::Bool {
            s.validate()?;
        }
        Ok(s)
    }

    /// A variable-length series over `data` and `len + 1` little-endian `u64` offsets.
    ///
    /// # Errors
    /// [`SeriesError::BadOffsets`] if offsets are not non-decreasing and within `data`;
    /// [`SeriesError::InvalidValue`] for invalid UTF-8 (`string`) or JSON (`json`).
    pub fn from_variable(dt: DataType, data: Bytes, offsets: Bytes) -> Result<Series, SeriesError> {
        if !dt.is_variable() {
            return Err(SeriesError::BadOffsets { reason: "fixed-size types take no offsets; use Series::from_bytes".into() });
        }
        if !offsets.len().is_multiple_of(8) || offsets.is_empty() {
            return Err(SeriesError::BadOffsets { reason: "offsets must hold len + 1 u64 values".into() });
        }
        let offsets = if !(offsets.as_ptr() as usize).is_multiple_of(8) { aligned_copy(&offsets) } else { offsets };
        let s = Series {
            data_type: dt,
            len: offsets.len() / 8 - 1,
            data,
            offsets: Some(offsets),
            time_range: TimeRange::default(),
            alignment: Alignment::default(),
        };
        s.validate()?;
        Ok(s)
    }

    /// Check the invariants a user-supplied series must meet before it is stored: offsets in
    /// bounds and non-decreasing, UTF-8 strings, parseable JSON, booleans 0 or 1.
    ///
    /// # Errors
    /// The first violation found.
    pub fn validate(&self) -> Result<(), SeriesError> {
        match self.data_type {
            DataType::Bool => {
                if let Some((i, b)) = self.data.iter().enumerate().find(|&(_, &b)| b > 1) {
                    return Err(SeriesError::InvalidValue {
                        index: i,
                        data_type: DataType::Bool,
                        reason: format!("byte value {b} (booleans are stored as 0 or 1)"),
                    });
                }
            }
            dt if dt.is_variable() => {
                let offs = self.offsets_u64();
                let mut prev = offs.first().copied().unwrap_or(0);
                if prev as usize > self.data.len() {
                    return Err(SeriesError::BadOffsets { reason: "offset past the end of the data".into() });
                }
                for (i, &o) in offs.iter().enumerate().skip(1) {
                    if o < prev {
                        return Err(SeriesError::BadOffsets { reason: "offsets decrease".into() });
                    }
                    if o as usize > self.data.len() {
                        return Err(SeriesError::BadOffsets { reason: "offset past the end of the data".into() });
                    }
                    // prev <= o <= data.len(), checked above.
                    let value = self.data.get(prev as usize..o as usize).unwrap_or_default();
                    match dt {
                        DataType::String => {
                            if let Err(e) = std::str::from_utf8(value) {
                                return Err(SeriesError::InvalidValue { index: i - 1, data_type: dt, reason: e.to_string() });
                            }
                        }
                        DataType::Json => {
                            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(value) {
                                return Err(SeriesError::InvalidValue { index: i - 1, data_type: dt, reason: e.to_string() });
                            }
                        }
                        _ => {}
                    }
                    prev = o;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The same samples with a time range attached.
    #[must_use]
    pub fn with_time_range(mut self, tr: TimeRange) -> Series {
        self.time_range = tr;
        self
    }

    /// The same samples with an alignment attached.
    #[must_use]
    pub fn with_alignment(mut self, a: Alignment) -> Series {
        self.alignment = a;
        self
    }

    /// The same bytes relabelled as another type of equal density (e.g. `i64` → `timestamp`).
    ///
    /// # Errors
    /// [`SeriesError::TypeMismatch`] if the densities differ or either type is variable.
    pub fn cast(mut self, dt: DataType) -> Result<Series, SeriesError> {
        if dt.density().is_none() || dt.density() != self.data_type.density() {
            return Err(SeriesError::TypeMismatch { actual: self.data_type, requested: dt });
        }
        self.data_type = dt;
        if dt == DataType::Bool {
            self.validate()?;
        }
        Ok(self)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the series holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The time range (default `[0, 0)` when unknown).
    pub fn time_range(&self) -> TimeRange {
        self.time_range
    }

    /// The alignment of the first sample.
    pub fn alignment(&self) -> Alignment {
        self.alignment
    }

    /// The sample bytes (for variable types, the concatenated values).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The offsets buffer of a variable-length series.
    pub fn offsets(&self) -> Option<&Bytes> {
        self.offsets.as_ref()
    }

    /// Size in bytes of the samples this series covers (data plus offsets).
    pub fn byte_size(&self) -> usize {
        match self.data_type.density() {
            Some(d) => d * self.len,
            None => self.value_range().len() + 8 * (self.len + 1),
        }
    }

    /// The bytes of `data` that the samples of a variable-length series cover (empty for
    /// fixed-size types).
    pub(crate) fn value_range(&self) -> Range<usize> {
        let o = self.offsets_u64();
        let start = o.first().map_or(0, |&x| x as usize);
        let end = o.get(self.len).map_or(start, |&x| x as usize);
        start..end
    }

    pub(crate) fn offsets_u64(&self) -> &[u64] {
        match &self.offsets {
            // SAFETY: offsets are 8-byte aligned (enforced on construction) and hold whole u64s.
            Some(o) => unsafe { std::slice::from_raw_parts(o.as_ptr().cast::<u64>(), o.len() / 8) },
            None => &[],
        }
    }

    /// View the samples as `&[T]`.
    ///
    /// # Errors
    /// [`SeriesError::TypeMismatch`] if `T` does not match the data type (`i64` also views
    /// `timestamp`, `u8` also views `bool`).
    pub fn as_slice<T: Sample>(&self) -> Result<&[T], SeriesError> {
        if !compatible::<T>(self.data_type) {
            return Err(SeriesError::TypeMismatch { actual: self.data_type, requested: T::DATA_TYPE });
        }
        if self.len == 0 {
            // An empty buffer (e.g. `Bytes::new()`) may have a dangling pointer that is not
            // aligned for `T`; `from_raw_parts` requires alignment even for empty slices.
            return Ok(&[]);
        }
        // SAFETY: the buffer is aligned for the type (constructors guarantee it), holds
        // `len` samples of `size_of::<T>()` bytes, and any bit pattern is a valid `T`.
        Ok(unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<T>(), self.len) })
    }

    /// The timestamps of a `timestamp` (or `i64`) series.
    ///
    /// # Errors
    /// [`SeriesError::TypeMismatch`] for other types.
    pub fn as_timestamps(&self) -> Result<&[i64], SeriesError> {
        self.as_slice::<i64>()
    }

    /// Sample `i` of a variable-length series as bytes.
    pub fn value_bytes(&self, i: usize) -> Option<&[u8]> {
        if !self.data_type.is_variable() || i >= self.len {
            return None;
        }
        let o = self.offsets_u64();
        self.data.get(*o.get(i)? as usize..*o.get(i + 1)? as usize)
    }

    /// Sample `i` of a `string` or `json` series as text.
    pub fn value_str(&self, i: usize) -> Option<&str> {
        self.value_bytes(i).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Sample `i` converted to `f64` (numeric, bool and timestamp types), for display and
    /// reductions.
    pub fn value_f64(&self, i: usize) -> Option<f64> {
        if i >= self.len {
            return None;
        }
        let d = self.data_type.density()?;
        let b = self.data.get(i * d..(i + 1) * d)?;
        Some(match self.data_type {
            DataType::U8 | DataType::Bool => *b.first()? as f64,
            DataType::I8 => *b.first()? as i8 as f64,
            DataType::U16 => u16::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::I16 => i16::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::U32 => u32::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::I32 => i32::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::F32 => f32::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::U64 => u64::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::I64 | DataType::Timestamp => i64::from_le_bytes(b.try_into().ok()?) as f64,
            DataType::F64 => f64::from_le_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// A zero-copy sub-series of samples `range`. The alignment advances with the start;
    /// the time range is kept (callers that know timestamps set a tighter one).
    ///
    /// # Errors
    /// [`SeriesError::OutOfBounds`] if the range is outside the series.
    pub fn slice(&self, range: Range<usize>) -> Result<Series, SeriesError> {
        if range.start > range.end || range.end > self.len {
            return Err(SeriesError::OutOfBounds { start: range.start, end: range.end, len: self.len });
        }
        let alignment = self.alignment.add_samples(range.start as u32);
        let mut out = match self.data_type.density() {
            Some(d) => Series { data: self.data.slice(range.start * d..range.end * d), offsets: None, ..self.clone() },
            None => {
                let o = self.offsets.as_ref().expect("variable series has offsets");
                Series { offsets: Some(o.slice(range.start * 8..(range.end + 1) * 8)), ..self.clone() }
            }
        };
        out.len = range.end - range.start;
        out.alignment = alignment;
        Ok(out)
    }

    /// Every `step`-th sample starting at sample `first` (copies). Used for decimation.
    pub fn take_every(&self, first: usize, step: usize) -> Series {
        let step = step.max(1);
        let idx: Vec<usize> = (first..self.len).step_by(step).collect();
        let mut out = match self.data_type.density() {
            Some(d) => {
                let mut buf = Vec::with_capacity(idx.len() * d);
                for sample in self.data.chunks_exact(d).take(self.len).skip(first).step_by(step) {
                    buf.extend_from_slice(sample);
                }
                Series { data: aligned_copy(&buf), offsets: None, ..self.clone() }
            }
            None => {
                let mut data = Vec::new();
                let mut offs: Vec<u64> = vec![0];
                for &i in &idx {
                    data.extend_from_slice(self.value_bytes(i).unwrap_or_default());
                    offs.push(data.len() as u64);
                }
                Series { data: Bytes::from(data), offsets: Some(Bytes::from_owner(VecOwner(offs))), ..self.clone() }
            }
        };
        out.len = idx.len();
        out.alignment = self.alignment.add_samples(first as u32);
        out
    }

    /// Concatenate series of one data type into one buffer (copies).
    ///
    /// # Errors
    /// [`SeriesError::TypeMismatch`] if the types differ.
    pub fn concat(parts: &[Series]) -> Result<Series, SeriesError> {
        let Some(first) = parts.first() else {
            return Ok(Series::empty_of(DataType::F64));
        };
        if parts.len() == 1 {
            return Ok(first.clone());
        }
        let dt = first.data_type;
        if let Some(bad) = parts.iter().find(|p| p.data_type != dt) {
            return Err(SeriesError::TypeMismatch { actual: bad.data_type, requested: dt });
        }
        let time_range = TimeRange {
            start: parts.iter().map(|p| p.time_range.start).min().unwrap_or_default(),
            end: parts.iter().map(|p| p.time_range.end).max().unwrap_or_default(),
        };
        let len: usize = parts.iter().map(Series::len).sum();
        let mut out = match dt.density() {
            Some(_) => {
                let total = parts.iter().map(|p| p.data.len()).sum();
                Series { data: aligned_concat(total, parts.iter().map(|p| p.data.as_ref())), offsets: None, ..first.clone() }
            }
            None => {
                let mut data = Vec::new();
                let mut offs: Vec<u64> = Vec::with_capacity(len + 1);
                offs.push(0);
                for p in parts {
                    for i in 0..p.len {
                        data.extend_from_slice(p.value_bytes(i).unwrap_or_default());
                        offs.push(data.len() as u64);
                    }
                }
                Series { data: Bytes::from(data), offsets: Some(Bytes::from_owner(VecOwner(offs))), ..first.clone() }
            }
        };
        out.len = len;
        out.time_range = time_range;
        Ok(out)
    }
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Series");
        d.field("data_type", &self.data_type)
            .field("len", &self.len)
            .field("time_range", &self.time_range)
            .field("alignment", &self.alignment);
        d.finish()
    }
}

impl PartialEq for Series {
    /// Equal when type and samples match (time range and alignment are not compared).
    fn eq(&self, other: &Series) -> bool {
        if self.data_type != other.data_type || self.len != other.len {
            return false;
        }
        match self.data_type.density() {
            Some(_) => self.data == other.data,
            None => (0..self.len).all(|i| self.value_bytes(i) == other.value_bytes(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_is_zero_copy() {
        let v = vec![1u32, 2, 3];
        let ptr = v.as_ptr() as usize;
        let s = Series::from_vec(v);
        assert_eq!(s.data().as_ptr() as usize, ptr);
        let c = s.clone();
        assert_eq!(c.data().as_ptr() as usize, ptr);
    }

    #[test]
    fn variable_slices_share_data() {
        let s = Series::strings(&["a", "bb", "", "dddd"]);
        assert_eq!(s.len(), 4);
        let t = s.slice(1..4).unwrap();
        assert_eq!(t.value_str(0), Some("bb"));
        assert_eq!(t.value_str(1), Some(""));
        assert_eq!(t.value_str(2), Some("dddd"));
        assert_eq!(t.data().as_ptr(), s.data().as_ptr());
        assert_eq!(t.byte_size(), 6 + 8 * 4);
    }

    #[test]
    fn validation_rejects_bad_values() {
        assert!(Series::json(&["{\"a\":1}", "[1,2]"]).is_ok());
        let e = Series::json(&["{\"a\":1}", "{oops"]).unwrap_err();
        assert!(matches!(e, SeriesError::InvalidValue { index: 1, .. }));
        let bad_utf8 =
            Series::from_variable(DataType::String, Bytes::from_static(&[0xff, 0xfe]), Series::from_vec(vec![0u64, 2]).data().clone());
        assert!(matches!(bad_utf8, Err(SeriesError::InvalidValue { .. })));
        assert!(matches!(Series::from_bytes(DataType::F64, Bytes::from_static(&[0; 12])), Err(SeriesError::RaggedBuffer { .. })));
        assert!(Series::from_bytes(DataType::Bool, Bytes::from_static(&[0, 1, 2])).is_err());
    }

    #[test]
    fn type_mismatch_is_an_error() {
        let s = Series::from_vec(vec![1.0f32]);
        assert!(s.as_slice::<f64>().is_err());
        let t = Series::timestamps(vec![1, 2]);
        assert_eq!(t.as_timestamps().unwrap(), &[1, 2]);
    }

    #[test]
    fn misaligned_bytes_are_realigned() {
        let raw = Bytes::from(vec![0u8; 17]).slice(1..17);
        let s = Series::from_bytes(DataType::F64, raw).unwrap();
        assert_eq!(s.data().as_ptr() as usize % 8, 0);
        assert_eq!(s.as_slice::<f64>().unwrap(), &[0.0, 0.0]);
    }

    #[test]
    fn take_every_decimates() {
        let s = Series::from_vec((0..10i32).collect::<Vec<_>>());
        assert_eq!(s.take_every(1, 3).as_slice::<i32>().unwrap(), &[1, 4, 7]);
        assert!(s.take_every(10, 3).is_empty());
        let v = Series::strings(&["a", "b", "c", "d"]);
        let t = v.take_every(0, 2);
        assert_eq!((t.value_str(0), t.value_str(1)), (Some("a"), Some("c")));
    }

    #[test]
    fn concat_joins_fixed_and_variable() {
        let a = Series::from_vec(vec![1i16, 2]);
        let b = Series::from_vec(vec![3i16]);
        assert_eq!(Series::concat(&[a, b]).unwrap().as_slice::<i16>().unwrap(), &[1, 2, 3]);
        let s = Series::concat(&[Series::strings(&["x"]), Series::strings(&["yz", "w"])]).unwrap();
        assert_eq!((0..3).map(|i| s.value_str(i).unwrap()).collect::<Vec<_>>(), ["x", "yz", "w"]);
    }
}
