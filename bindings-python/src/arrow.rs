//! Frames as Arrow, natively: the Arrow C Data Interface and its PyCapsule protocol
//! (`__arrow_c_array__`, `__arrow_c_stream__`) without pyarrow.
//!
//! A frame becomes one record batch (a struct array with one child per channel). Arrow
//! buffers point into the series' reference-counted bytes, which the exported structs keep
//! alive until the consumer releases them: fixed-size numeric, timestamp, uuid, string,
//! json and bytes channels are exported **without copying** when a channel has one
//! series. Channels read as several series are concatenated once, all of a frame's into one
//! shared allocation backed by huge pages ([`joined`]): a copy into many small allocations
//! costs a page fault per 4 KiB, which on this class of VM is most of its time. Booleans
//! are bit-packed (Arrow stores one bit per value).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr::null_mut;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use telemetron::telem::{DataType, Series};

use crate::error::invalid;

const NULLABLE: i64 = 2;
/// Stand-in address for empty buffers (Arrow wants non-null, aligned pointers).
static EMPTY: [u64; 1] = [0];

#[repr(C)]
struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct ArrowArrayStream {
    get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    private_data: *mut c_void,
}

/// Capsule payloads must be `Send`; the structs hold raw pointers to memory they own.
#[repr(transparent)]
struct SendBox<T>(T);
// SAFETY: the pointed-to memory is owned by the struct's private data (Rust allocations
// and reference-counted `Bytes`, which are Send + Sync) and is only freed by `release`.
unsafe impl<T> Send for SendBox<T> {}

/// One exported column.
#[derive(Clone)]
pub struct Column {
    name: CString,
    format: &'static CStr,
    len: usize,
    /// Arrow buffers in order; `None` is an absent validity bitmap.
    buffers: Vec<Option<Bytes>>,
}

fn format(dt: DataType) -> &'static CStr {
    match dt {
        DataType::U8 => c"C",
        DataType::U16 => c"S",
        DataType::U32 => c"I",
        DataType::U64 => c"L",
        DataType::I8 => c"c",
        DataType::I16 => c"s",
        DataType::I32 => c"i",
        DataType::I64 => c"l",
        DataType::F32 => c"f",
        DataType::F64 => c"g",
        DataType::Bool => c"b",
        DataType::Timestamp => c"tsn:UTC",
        DataType::Uuid => c"w:16",
        DataType::String | DataType::Json => c"U",
        DataType::Bytes => c"Z",
    }
}

impl Column {
    /// The column for one channel's series (zero-copy for one series, except booleans).
    pub fn new(name: &str, dt: DataType, parts: &[&Series]) -> PyResult<Column> {
        let name = CString::new(name).map_err(|_| invalid("channel names with NUL bytes cannot be exported to Arrow"))?;
        let owned: Vec<Series> = parts.iter().map(|s| (*s).clone()).collect();
        let s = if owned.is_empty() { Series::empty_of(dt) } else { Series::concat(&owned).map_err(|e| crate::error::to_py(e.into()))? };
        let len = s.len();
        let buffers = match dt.density() {
            Some(_) if dt == DataType::Bool => {
                let mut bits = vec![0u8; len.div_ceil(8)];
                for (i, &b) in s.data()[..len].iter().enumerate() {
                    bits[i / 8] |= u8::from(b != 0) << (i % 8);
                }
                vec![None, Some(Bytes::from(bits))]
            }
            Some(d) => vec![None, Some(s.data().slice(..len * d))],
            None => {
                let offsets = s.offsets().cloned().unwrap_or_else(|| Bytes::from_static(&[0; 8]));
                vec![None, Some(offsets), Some(s.data().clone())]
            }
        };
        Ok(Column { name, format: format(dt), len, buffers })
    }

    /// A fixed-size column whose `len` samples are already in one buffer.
    pub fn fixed(name: &str, dt: DataType, len: usize, data: Bytes) -> PyResult<Column> {
        let name = CString::new(name).map_err(|_| invalid("channel names with NUL bytes cannot be exported to Arrow"))?;
        Ok(Column { name, format: format(dt), len, buffers: vec![None, Some(data)] })
    }

    /// Address of the data buffer (for zero-copy checks).
    pub fn data_ptr(&self) -> usize {
        self.buffers.last().and_then(|b| b.as_ref()).map_or(0, |b| b.as_ptr() as usize)
    }
}

// --- schema ---------------------------------------------------------------------------------

struct SchemaPrivate {
    _format: CString,
    _name: CString,
    children: Vec<*mut ArrowSchema>,
}

/// An 8-byte aligned allocation owned by the `Bytes` that slice it.
struct Words(Vec<u64>);

impl AsRef<[u8]> for Words {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: a Vec<u64> of n elements is n * 8 initialised bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * 8) }
    }
}

/// One fresh allocation of `total` bytes in which each run `(offset, buffers)` is copied
/// back to back from `offset` (runs do not overlap and fit in `total`; offsets multiples of
/// 8). Huge pages are asked for before the first write, and the copy runs with the GIL
/// released, on two threads when large. Bytes between runs are zero.
pub fn joined(py: Python<'_>, total: usize, runs: &[(usize, Vec<Bytes>)]) -> PyResult<Bytes> {
    for (off, bufs) in runs {
        let end = bufs.iter().map(Bytes::len).sum::<usize>() + off;
        if end > total || off % 8 != 0 {
            return Err(invalid(format!("internal: a column run {off}..{end} does not fit a {total}-byte export buffer")));
        }
    }
    let words = total.div_ceil(8);
    let mut v: Vec<u64> = Vec::with_capacity(words);
    let base = v.as_mut_ptr() as usize;
    advise_huge_pages(base, words * 8);
    let fill = |runs: &[(usize, Vec<Bytes>)]| {
        for (off, bufs) in runs {
            let mut at = base + off;
            for b in bufs {
                // SAFETY: checked above: every run lies inside the allocation of `words * 8`
                // bytes, runs are disjoint, and the sources are other allocations.
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), at as *mut u8, b.len()) };
                at += b.len();
            }
        }
    };
    py.detach(|| {
        // Zero the gaps (alignment padding and the tail) so every byte is initialised.
        let mut covered: Vec<(usize, usize)> = runs.iter().map(|(o, b)| (*o, o + b.iter().map(Bytes::len).sum::<usize>())).collect();
        covered.sort_unstable();
        let mut at = 0usize;
        for (s, e) in covered.iter().copied().chain(std::iter::once((words * 8, words * 8))) {
            if s > at {
                // SAFETY: at..s is inside the allocation and no run writes it.
                unsafe { std::ptr::write_bytes((base + at) as *mut u8, 0, s - at) };
            }
            at = at.max(e);
        }
        if runs.len() < 2 || total < (32 << 20) {
            fill(runs);
        } else {
            let (a, b) = runs.split_at(runs.len() / 2);
            std::thread::scope(|s| {
                s.spawn(|| fill(a));
                fill(b);
            });
        }
    });
    // SAFETY: every byte of the `words` elements was written above (runs or zeroed gaps).
    unsafe { v.set_len(words) };
    Ok(Bytes::from_owner(Words(v)))
}

/// Ask Linux to back the whole 2 MiB pages inside `[ptr, ptr + len)` with huge pages before
/// they are first written (numpy does the same for its arrays). A hint; failure is harmless.
fn advise_huge_pages(ptr: usize, len: usize) {
    const HUGE: usize = 2 << 20;
    let (start, end) = (ptr.next_multiple_of(HUGE), (ptr + len) / HUGE * HUGE);
    if end > start {
        // SAFETY: the range lies inside one live allocation; MADV_HUGEPAGE changes how the
        // kernel backs it, never its contents.
        let _ = unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

unsafe extern "C" fn release_schema(s: *mut ArrowSchema) {
    // SAFETY: called by the consumer on a schema we built, at most once (release is
    // cleared); private_data is the Box made in `schema`.
    unsafe {
        let Some(s) = s.as_mut() else { return };
        if s.release.is_none() {
            return;
        }
        let private = Box::from_raw(s.private_data.cast::<SchemaPrivate>());
        for &c in &private.children {
            if let Some(r) = (*c).release {
                r(c);
            }
            drop(Box::from_raw(c));
        }
        s.release = None;
    }
}

fn schema(format: &CStr, name: &CStr, flags: i64, children: Vec<ArrowSchema>) -> ArrowSchema {
    let mut private = Box::new(SchemaPrivate {
        _format: format.to_owned(),
        _name: name.to_owned(),
        children: children.into_iter().map(|c| Box::into_raw(Box::new(c))).collect(),
    });
    ArrowSchema {
        format: private._format.as_ptr(),
        name: private._name.as_ptr(),
        metadata: std::ptr::null(),
        flags,
        n_children: private.children.len() as i64,
        children: private.children.as_mut_ptr(),
        dictionary: null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private).cast(),
    }
}

fn batch_schema(cols: &[Column]) -> ArrowSchema {
    let children = cols.iter().map(|c| schema(c.format, &c.name, NULLABLE, Vec::new())).collect();
    schema(c"+s", c"", 0, children)
}

// --- arrays ---------------------------------------------------------------------------------

struct ArrayPrivate {
    _keep: Vec<Bytes>,
    buffers: Vec<*const c_void>,
    children: Vec<*mut ArrowArray>,
}

unsafe extern "C" fn release_array(a: *mut ArrowArray) {
    // SAFETY: as `release_schema`.
    unsafe {
        let Some(a) = a.as_mut() else { return };
        if a.release.is_none() {
            return;
        }
        let private = Box::from_raw(a.private_data.cast::<ArrayPrivate>());
        for &c in &private.children {
            if let Some(r) = (*c).release {
                r(c);
            }
            drop(Box::from_raw(c));
        }
        a.release = None;
    }
}

fn array(len: usize, buffers: &[Option<Bytes>], children: Vec<ArrowArray>) -> ArrowArray {
    let ptrs = buffers
        .iter()
        .map(|b| match b {
            None => std::ptr::null(),
            Some(b) if b.is_empty() => EMPTY.as_ptr().cast(),
            Some(b) => b.as_ptr().cast(),
        })
        .collect();
    let mut private = Box::new(ArrayPrivate {
        _keep: buffers.iter().flatten().cloned().collect(),
        buffers: ptrs,
        children: children.into_iter().map(|c| Box::into_raw(Box::new(c))).collect(),
    });
    ArrowArray {
        length: len as i64,
        null_count: 0,
        offset: 0,
        n_buffers: private.buffers.len() as i64,
        n_children: private.children.len() as i64,
        buffers: private.buffers.as_mut_ptr(),
        children: private.children.as_mut_ptr(),
        dictionary: null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private).cast(),
    }
}

fn batch_array(cols: &[Column]) -> ArrowArray {
    let rows = cols.first().map_or(0, |c| c.len);
    array(rows, &[None], cols.iter().map(|c| array(c.len, &c.buffers, Vec::new())).collect())
}

fn check_lengths(cols: &[Column]) -> PyResult<()> {
    if cols.windows(2).any(|w| w[0].len != w[1].len) {
        return Err(invalid("channels have different lengths; a record batch needs equal columns"));
    }
    Ok(())
}

// --- streams --------------------------------------------------------------------------------

struct StreamPrivate {
    cols: Vec<Column>,
    done: bool,
}

unsafe extern "C" fn stream_schema(s: *mut ArrowArrayStream, out: *mut ArrowSchema) -> c_int {
    // SAFETY: `s` is our stream (private_data set in `stream`), `out` a valid destination.
    unsafe {
        let p = &*(*s).private_data.cast::<StreamPrivate>();
        out.write(batch_schema(&p.cols));
    }
    0
}

unsafe extern "C" fn stream_next(s: *mut ArrowArrayStream, out: *mut ArrowArray) -> c_int {
    // SAFETY: as `stream_schema`. A released (end-of-stream) array has `release` null.
    unsafe {
        let p = &mut *(*s).private_data.cast::<StreamPrivate>();
        if p.done {
            out.write(ArrowArray {
                length: 0,
                null_count: 0,
                offset: 0,
                n_buffers: 0,
                n_children: 0,
                buffers: null_mut(),
                children: null_mut(),
                dictionary: null_mut(),
                release: None,
                private_data: null_mut(),
            });
        } else {
            p.done = true;
            out.write(batch_array(&p.cols));
        }
    }
    0
}

unsafe extern "C" fn stream_error(_: *mut ArrowArrayStream) -> *const c_char {
    std::ptr::null()
}

unsafe extern "C" fn release_stream(s: *mut ArrowArrayStream) {
    // SAFETY: as `release_schema`.
    unsafe {
        let Some(s) = s.as_mut() else { return };
        if s.release.is_none() {
            return;
        }
        drop(Box::from_raw(s.private_data.cast::<StreamPrivate>()));
        s.release = None;
    }
}

/// `(schema capsule, array capsule)` for `__arrow_c_array__`.
pub fn c_array(py: Python<'_>, cols: Vec<Column>) -> PyResult<(Bound<'_, PyCapsule>, Bound<'_, PyCapsule>)> {
    check_lengths(&cols)?;
    let s = PyCapsule::new_with_value_and_destructor(py, SendBox(batch_schema(&cols)), c"arrow_schema", |mut s, _| {
        // SAFETY: a schema we built; a consumer that moved it out cleared `release`.
        if let Some(r) = s.0.release {
            unsafe { r(&mut s.0) }
        }
    })?;
    let a = PyCapsule::new_with_value_and_destructor(py, SendBox(batch_array(&cols)), c"arrow_array", |mut a, _| {
        // SAFETY: as above.
        if let Some(r) = a.0.release {
            unsafe { r(&mut a.0) }
        }
    })?;
    Ok((s, a))
}

/// The capsule for `__arrow_c_stream__` (one record batch).
pub fn c_stream(py: Python<'_>, cols: Vec<Column>) -> PyResult<Bound<'_, PyCapsule>> {
    check_lengths(&cols)?;
    let private = Box::new(StreamPrivate { cols, done: false });
    let stream = ArrowArrayStream {
        get_schema: Some(stream_schema),
        get_next: Some(stream_next),
        get_last_error: Some(stream_error),
        release: Some(release_stream),
        private_data: Box::into_raw(private).cast(),
    };
    PyCapsule::new_with_value_and_destructor(py, SendBox(stream), c"arrow_array_stream", |mut s, _| {
        // SAFETY: a stream we built; a consumer that moved it out cleared `release`.
        if let Some(r) = s.0.release {
            unsafe { r(&mut s.0) }
        }
    })
}
