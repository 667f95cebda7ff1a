//! Series and frames: zero-copy numpy views out, zero-copy numpy arrays in.
//!
//! ## Out (reading)
//! A fixed-size series becomes a read-only numpy array *over the Rust buffer*: the array's
//! `base` is a [`SeriesBuffer`] that owns the series' reference-counted bytes, so the
//! memory stays valid as long as any array over it lives. A channel read as several series
//! (one per stored run) is concatenated into one new array when asked for as one array
//! (one copy, made with the GIL released); `NativeFrame.arrays` gives the zero-copy pieces.
//!
//! ## In (writing)
//! A 1-D, C-contiguous, aligned numpy array whose dtype matches the channel's type is
//! passed to the core without a copy: the series' bytes are owned by a [`NumpyOwner`]
//! that keeps the array alive. Anything else (lists, scalars, pandas, other dtypes) is
//! converted once by `telemetron._convert.coerce` and then passed the same way.

use std::sync::Arc;

use bytes::Bytes;
use numpy::ndarray::ArrayView1;
use numpy::{Element, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyCapsule, PyDict, PyFloat, PyInt, PyList};
use telemetron::channel::{Channel, ChannelKey};
use telemetron::telem::{DataType, Frame, Series};

use crate::channel::{ChanMap, PyChannel};
use crate::error::{IntoPyResult, invalid};

/// Run `$body` with `$T` bound to the numpy element type of a fixed-size data type
/// (`timestamp` is `i64`, `bool` is `bool`); `$other` for uuid and variable types.
macro_rules! dispatch_fixed {
    ($dt:expr, $T:ident => $body:expr, _ => $other:expr) => {
        match $dt {
            DataType::U8 => {
                type $T = u8;
                $body
            }
            DataType::U16 => {
                type $T = u16;
                $body
            }
            DataType::U32 => {
                type $T = u32;
                $body
            }
            DataType::U64 => {
                type $T = u64;
                $body
            }
            DataType::I8 => {
                type $T = i8;
                $body
            }
            DataType::I16 => {
                type $T = i16;
                $body
            }
            DataType::I32 => {
                type $T = i32;
                $body
            }
            DataType::I64 | DataType::Timestamp => {
                type $T = i64;
                $body
            }
            DataType::F32 => {
                type $T = f32;
                $body
            }
            DataType::F64 => {
                type $T = f64;
                $body
            }
            DataType::Bool => {
                type $T = bool;
                $body
            }
            _ => $other,
        }
    };
}

/// Owns a series' bytes on behalf of numpy arrays viewing them (their `base`).
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct SeriesBuffer {
    series: Series,
}

#[pymethods]
impl SeriesBuffer {
    /// Address of the first sample in the Rust buffer (for zero-copy checks).
    #[getter]
    fn ptr(&self) -> usize {
        self.series.data().as_ptr() as usize
    }

    /// Number of samples.
    fn __len__(&self) -> usize {
        self.series.len()
    }

    /// The series' data type name.
    #[getter]
    fn data_type(&self) -> &'static str {
        self.series.data_type().name()
    }
}

fn read_only<'py, T: Element>(arr: Bound<'py, PyArray1<T>>) -> Bound<'py, PyAny> {
    let ro = arr.readwrite().make_nonwriteable();
    (*ro).clone().into_any()
}

/// A read-only numpy array over a fixed-size series (no copy), or a list for other types.
pub fn series_to_py<'py>(py: Python<'py>, s: &Series) -> PyResult<Bound<'py, PyAny>> {
    dispatch_fixed!(s.data_type(), T => {
        if s.is_empty() {
            return Ok(read_only(PyArray1::<T>::zeros(py, 0, false)));
        }
        let owner = Bound::new(py, SeriesBuffer { series: s.clone() })?;
        let ptr = owner.get().series.data().as_ptr().cast::<T>();
        // SAFETY: the series' buffer is aligned for T and holds `len` samples (Series
        // constructors guarantee both; bool buffers hold only 0 and 1, validated on write);
        // `owner` becomes the array's base, keeping the buffer alive, and the buffer is
        // immutable (the array is made read-only).
        let view = unsafe { ArrayView1::<T>::from_shape_ptr(s.len(), ptr) };
        let arr = unsafe { PyArray1::<T>::borrow_from_array(&view, owner.into_any()) };
        Ok(read_only(arr))
    }, _ => variable_to_py(py, std::slice::from_ref(s)))
}

/// One array for several series of one channel: zero-copy for one series, one copy
/// (GIL released) for several.
pub fn concat_to_py<'py>(py: Python<'py>, dt: DataType, parts: &[&Series]) -> PyResult<Bound<'py, PyAny>> {
    if parts.len() == 1 {
        return series_to_py(py, parts[0]);
    }
    dispatch_fixed!(dt, T => {
        let total: usize = parts.iter().map(|s| s.len()).sum();
        let size = std::mem::size_of::<T>();
        let bufs: Vec<Bytes> = parts.iter().map(|s| s.data().slice(..s.len() * size)).collect();
        let v: Vec<T> = py.detach(move || {
            let mut v: Vec<T> = Vec::with_capacity(total);
            let mut at = 0usize;
            for b in &bufs {
                // SAFETY: `v` has room for `total` samples; each buffer holds whole samples
                // of T (same data type), and the destination does not overlap it.
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr().cast::<u8>().add(at), b.len()) };
                at += b.len();
            }
            // SAFETY: exactly `total` samples were written above.
            unsafe { v.set_len(total) };
            v
        });
        Ok(read_only(PyArray1::from_vec(py, v)))
    }, _ => {
        let owned: Vec<Series> = parts.iter().map(|s| (*s).clone()).collect();
        variable_to_py(py, &owned)
    })
}

/// Python values of uuid / string / json / bytes series, as one list.
fn variable_to_py<'py>(py: Python<'py>, parts: &[Series]) -> PyResult<Bound<'py, PyAny>> {
    static UUID: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let out = PyList::empty(py);
    for s in parts {
        match s.data_type() {
            DataType::Uuid => {
                let cls = UUID.import(py, "uuid", "UUID")?;
                let kw = PyDict::new(py);
                for i in 0..s.len() {
                    kw.set_item("bytes", PyBytes::new(py, &s.data()[i * 16..(i + 1) * 16]))?;
                    out.append(cls.call((), Some(&kw))?)?;
                }
            }
            DataType::String => {
                for i in 0..s.len() {
                    out.append(s.value_str(i).unwrap_or_default())?;
                }
            }
            DataType::Json => {
                let loads = LOADS.import(py, "json", "loads")?;
                for i in 0..s.len() {
                    out.append(loads.call1((s.value_str(i).unwrap_or("null"),))?)?;
                }
            }
            _ => {
                for i in 0..s.len() {
                    out.append(PyBytes::new(py, s.value_bytes(i).unwrap_or_default()))?;
                }
            }
        }
    }
    Ok(out.into_any())
}

/// Keeps a numpy array alive while the core holds a series over its memory.
struct NumpyOwner {
    _array: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the array kept alive by `_array` (a `Py`, which is Send);
// the bytes are only read.
unsafe impl Send for NumpyOwner {}

impl AsRef<[u8]> for NumpyOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` bytes of the array's data, alive while `_array` is.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The array's bytes without a copy, if `obj` is a 1-D C-contiguous aligned array of T.
fn borrow_numpy<T: Element>(obj: &Bound<'_, PyAny>) -> Option<Bytes> {
    let arr = obj.cast::<PyArray1<T>>().ok()?;
    if !arr.is_c_contiguous() {
        return None;
    }
    let len = arr.len() * std::mem::size_of::<T>();
    let ptr = arr.data().cast::<u8>().cast_const();
    if len == 0 {
        return Some(Bytes::new());
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return None;
    }
    Some(Bytes::from_owner(NumpyOwner { _array: obj.clone().unbind(), ptr, len }))
}

/// Python's conversion helper for everything that is not already the right numpy array.
fn coerce<'py>(py: Python<'py>, value: &Bound<'py, PyAny>, ch: &Channel) -> PyResult<Bound<'py, PyAny>> {
    static COERCE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    COERCE.import(py, "telemetron._convert", "coerce")?.call1((value, ch.data_type.name(), ch.name.as_str()))
}

/// A one-sample series from a Python `int`/`float`/`bool`, without numpy (fast path).
fn scalar_series(value: &Bound<'_, PyAny>, dt: DataType) -> Option<Series> {
    if value.is_exact_instance_of::<PyFloat>() {
        let x: f64 = value.extract().ok()?;
        return match dt {
            DataType::F64 => Some(Series::from_vec(vec![x])),
            DataType::F32 => Some(Series::from_vec(vec![x as f32])),
            _ => None,
        };
    }
    if value.is_exact_instance_of::<PyBool>() {
        let b: bool = value.extract().ok()?;
        return (dt == DataType::Bool).then(|| Series::bools(&[b]));
    }
    if value.is_exact_instance_of::<PyInt>() {
        macro_rules! int {
            ($t:ty) => {
                value.extract::<$t>().ok().map(|x| Series::from_vec(vec![x]))
            };
        }
        return match dt {
            DataType::F64 => value.extract::<i64>().ok().map(|x| Series::from_vec(vec![x as f64])),
            DataType::Timestamp => value.extract::<i64>().ok().map(|x| Series::timestamps(vec![x])),
            DataType::I64 => int!(i64),
            DataType::I32 => int!(i32),
            DataType::I16 => int!(i16),
            DataType::I8 => int!(i8),
            DataType::U64 => int!(u64),
            DataType::U32 => int!(u32),
            DataType::U16 => int!(u16),
            DataType::U8 => int!(u8),
            _ => None,
        };
    }
    None
}

/// A series for channel `ch` from any supported Python value.
pub fn series_from_py(py: Python<'_>, value: &Bound<'_, PyAny>, ch: &Channel) -> PyResult<Series> {
    let dt = ch.data_type;
    if let Some(s) = scalar_series(value, dt) {
        return Ok(s);
    }
    let fixed = |v: &Bound<'_, PyAny>| -> PyResult<Option<Series>> {
        let bytes = dispatch_fixed!(dt, T => borrow_numpy::<T>(v), _ => None);
        bytes.map(|b| Series::from_bytes(dt, b).map_err(telemetron::Error::from).py()).transpose()
    };
    if dt.density().is_some() && dt != DataType::Uuid {
        if let Some(s) = fixed(value)? {
            return Ok(s);
        }
        let arr = coerce(py, value, ch)?;
        return fixed(&arr)?.ok_or_else(|| invalid(format!("could not convert the values for channel {:?} to {}", ch.name, dt)));
    }
    let conv = coerce(py, value, ch)?;
    let s = match dt {
        DataType::Uuid => {
            let b = borrow_numpy::<u8>(&conv).ok_or_else(|| invalid("uuid values must convert to 16 bytes each"))?;
            Series::from_bytes(DataType::Uuid, b)
        }
        DataType::String => Ok(Series::strings(&conv.extract::<Vec<String>>()?)),
        DataType::Json => Series::json(&conv.extract::<Vec<String>>()?),
        _ => Ok(Series::byte_values(&conv.extract::<Vec<Vec<u8>>>()?)),
    };
    s.map_err(telemetron::Error::from).py()
}

/// A frame from a `{channel: values}` dict; `resolve` maps a dict key to its channel.
pub fn frame_from_py<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyDict>,
    mut resolve: impl FnMut(&Bound<'py, PyAny>) -> PyResult<Channel>,
) -> PyResult<Frame> {
    let mut f = Frame::with_capacity(data.len());
    for (k, v) in data.iter() {
        let ch = resolve(&k)?;
        let s = series_from_py(py, &v, &ch)?;
        f.push(ch.key, s);
    }
    Ok(f)
}

/// Copy each row's buffers, back to back, into row i of the block at `base` (rows of
/// `row_bytes`), on two threads when there is enough to share.
fn copy_rows(base: usize, row_bytes: usize, rows: &[Vec<Bytes>]) {
    let copy = |first: usize, rows: &[Vec<Bytes>]| {
        for (i, bufs) in rows.iter().enumerate() {
            let mut at = base + (first + i) * row_bytes;
            for b in bufs {
                // SAFETY: the block has `rows.len()` rows of `row_bytes`; the buffers of one
                // row hold exactly `row_bytes` bytes together (checked by the caller), and
                // rows are disjoint, so threads never write the same bytes.
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), at as *mut u8, b.len()) };
                at += b.len();
            }
        }
    };
    if rows.len() < 2 || row_bytes * rows.len() < (32 << 20) {
        return copy(0, rows);
    }
    let half = rows.len() / 2;
    let (a, b) = rows.split_at(half);
    std::thread::scope(|s| {
        s.spawn(|| copy(0, a));
        copy(half, b);
    });
}

/// Series keyed by channel, as returned by reads, streamers and iterators. Wrapped by the
/// Python `telemetron.Frame`.
#[pyclass(frozen, module = "telemetron._native")]
#[derive(Debug)]
pub struct NativeFrame {
    pub frame: Frame,
    pub chans: Arc<ChanMap>,
    /// True for reads: every channel asked for is listed, even without samples.
    pub complete: bool,
}

impl NativeFrame {
    fn parts(&self, key: ChannelKey) -> Vec<&Series> {
        self.frame.get(key).collect()
    }

    fn data_type(&self, key: ChannelKey) -> DataType {
        match self.chans.by_key.get(&key) {
            Some(c) => c.data_type,
            None => self.frame.get(key).next().map_or(DataType::F64, Series::data_type),
        }
    }
}

#[pymethods]
impl NativeFrame {
    /// Channels present, in first-seen order (for reads, then the channels read that
    /// have no samples, by key).
    fn channels(&self) -> Vec<PyChannel> {
        self.keys().into_iter().filter_map(|k| self.chans.by_key.get(&k)).map(|c| PyChannel { inner: c.clone() }).collect()
    }

    /// Keys present, in first-seen order (for reads, then the empty channels by key).
    fn keys(&self) -> Vec<ChannelKey> {
        let mut keys = self.frame.unique_keys();
        if self.complete {
            let mut rest: Vec<ChannelKey> = self.chans.by_key.keys().copied().filter(|k| !keys.contains(k)).collect();
            rest.sort_unstable();
            keys.extend(rest);
        }
        keys
    }

    /// One array of every sample of `key` (zero-copy for one series, one copy for more;
    /// an empty array if absent).
    fn array<'py>(&self, py: Python<'py>, key: ChannelKey) -> PyResult<Bound<'py, PyAny>> {
        let parts = self.parts(key);
        let dt = self.data_type(key);
        if parts.is_empty() {
            return concat_to_py(py, dt, &[&Series::empty_of(dt)]);
        }
        concat_to_py(py, dt, &parts)
    }

    /// One zero-copy array (or list) per series of `key`.
    fn arrays<'py>(&self, py: Python<'py>, key: ChannelKey) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.parts(key).into_iter().map(|s| series_to_py(py, s)).collect()
    }

    /// Every sample of `keys` (one fixed-size data type, equal lengths), copied once into a
    /// new C-ordered 2-D array of shape `(len(keys), samples)`: row i is `keys[i]`. Its
    /// transpose is what pandas stores as one block, so `DataFrame(block.T, copy=False)`
    /// costs no second copy. The copy runs with the GIL released, on two threads when large.
    fn block<'py>(&self, py: Python<'py>, keys: Vec<ChannelKey>) -> PyResult<Bound<'py, PyAny>> {
        let Some(&first) = keys.first() else { return Err(invalid("block() needs at least one channel")) };
        let (dt, n) = (self.data_type(first), self.samples(first));
        if let Some(&k) = keys.iter().find(|&&k| self.data_type(k) != dt || self.samples(k) != n) {
            return Err(invalid(format!(
                "block() needs channels of one data type and length: channel {k} has {} {} samples, channel {first} {n} {dt}",
                self.samples(k),
                self.data_type(k)
            )));
        }
        dispatch_fixed!(dt, T => {
            let size = std::mem::size_of::<T>();
            // SAFETY: every element is written below before the array is returned to Python
            // (each row receives exactly `n` samples: the lengths were checked above).
            let arr = unsafe { numpy::PyArray2::<T>::new(py, [keys.len(), n], false) };
            let base = arr.data() as usize;
            let rows: Vec<Vec<Bytes>> =
                keys.iter().map(|&k| self.parts(k).into_iter().map(|s| s.data().slice(..s.len() * size)).collect()).collect();
            py.detach(move || copy_rows(base, n * size, &rows));
            Ok(arr.into_any())
        }, _ => Err(invalid(format!("block() needs a fixed-size data type, not {dt}"))))
    }

    /// Number of samples of `key`.
    fn samples(&self, key: ChannelKey) -> usize {
        self.frame.samples(key)
    }

    /// `(start, end)` in ns covered by the series of `key`, or None.
    fn time_range(&self, key: ChannelKey) -> Option<(i64, i64)> {
        let parts = self.parts(key);
        let start = parts.iter().map(|s| s.time_range().start.0).min()?;
        let end = parts.iter().map(|s| s.time_range().end.0).max()?;
        Some((start, end))
    }

    /// Each series' alignment of `key` (`(domain << 32) | position` of its first sample),
    /// one per array of [`NativeFrame::arrays`].
    fn alignments(&self, key: ChannelKey) -> Vec<u64> {
        self.parts(key).iter().map(|s| s.alignment().0).collect()
    }

    /// Rust-side address of each series' buffer of `key` (for zero-copy checks).
    fn data_ptrs(&self, key: ChannelKey) -> Vec<usize> {
        self.parts(key).iter().map(|s| s.data().as_ptr() as usize).collect()
    }

    /// Total bytes of sample data.
    fn byte_size(&self) -> usize {
        self.frame.byte_size()
    }

    /// Number of series.
    fn __len__(&self) -> usize {
        self.frame.len()
    }

    /// Arrow PyCapsules `(schema, array)` of `keys` as one record batch (no pyarrow needed).
    fn arrow_c_array<'py>(&self, py: Python<'py>, keys: Vec<ChannelKey>) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        crate::arrow::c_array(py, self.columns(py, &keys)?)
    }

    /// Arrow PyCapsule stream of `keys` (one record batch).
    fn arrow_c_stream<'py>(&self, py: Python<'py>, keys: Vec<ChannelKey>) -> PyResult<Bound<'py, PyCapsule>> {
        crate::arrow::c_stream(py, self.columns(py, &keys)?)
    }

    /// Address of each Arrow column's data buffer for `keys` (for zero-copy checks).
    fn arrow_data_ptrs(&self, py: Python<'_>, keys: Vec<ChannelKey>) -> PyResult<Vec<usize>> {
        Ok(self.columns(py, &keys)?.iter().map(crate::arrow::Column::data_ptr).collect())
    }
}

impl NativeFrame {
    /// The Arrow columns of `keys`: one series is exported as it is; fixed-size channels
    /// read as several series are concatenated together into one shared allocation.
    fn columns(&self, py: Python<'_>, keys: &[ChannelKey]) -> PyResult<Vec<crate::arrow::Column>> {
        let mut runs: Vec<(usize, Vec<Bytes>)> = Vec::new();
        let mut placed: std::collections::HashMap<ChannelKey, (usize, usize)> = std::collections::HashMap::new();
        let mut total = 0usize;
        for &k in keys {
            let (dt, parts) = (self.data_type(k), self.parts(k));
            if let (true, Some(d)) = (parts.len() > 1 && dt != DataType::Bool, dt.density())
                && !placed.contains_key(&k)
            {
                let bufs: Vec<Bytes> = parts.iter().map(|s| s.data().slice(..s.len() * d)).collect();
                let bytes: usize = bufs.iter().map(Bytes::len).sum();
                placed.insert(k, (total, bytes));
                runs.push((total, bufs));
                total += bytes.next_multiple_of(64);
            }
        }
        let shared = if runs.is_empty() { Bytes::new() } else { crate::arrow::joined(py, total, &runs)? };
        keys.iter()
            .map(|&k| {
                let name = self.chans.by_key.get(&k).map_or_else(|| k.to_string(), |c| c.name.clone());
                let dt = self.data_type(k);
                match (placed.get(&k), dt.density()) {
                    (Some(&(off, bytes)), Some(d)) => crate::arrow::Column::fixed(&name, dt, bytes / d, shared.slice(off..off + bytes)),
                    _ => crate::arrow::Column::new(&name, dt, &self.parts(k)),
                }
            })
            .collect()
    }
}

/// Debug helper: the Rust-side address of the series the SDK builds from `value` for a
/// channel of `data_type` (equals the numpy data address when the write is zero-copy).
#[pyfunction]
pub fn _debug_series_ptr(py: Python<'_>, value: &Bound<'_, PyAny>, data_type: &str) -> PyResult<usize> {
    let dt = crate::channel::parse_data_type(data_type)?;
    let ch = Channel {
        key: 0,
        name: "debug".into(),
        data_type: dt,
        kind: telemetron::channel::ChannelKind::Virtual,
        concurrency: Default::default(),
        internal: false,
        compression: Default::default(),
    };
    Ok(series_from_py(py, value, &ch)?.data().as_ptr() as usize)
}
