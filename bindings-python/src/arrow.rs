//! Frames as Arrow, natively: the Arrow PyCapsule protocol (`__arrow_c_array__`,
//! `__arrow_c_stream__`) over the `arrow` crates' C Data Interface, without pyarrow.
//!
//! A frame becomes one record batch through the core's one Arrow mapping
//! ([`telemetron::telem::arrow`]): Arrow buffers are the series' reference-counted bytes,
//! kept alive by the exported structs until the consumer releases them, so fixed-size
//! numeric, timestamp, uuid, string, json and bytes channels are exported **without
//! copying** when a channel has one series. Channels read as several series are
//! concatenated once, all of a frame's into one shared allocation backed by huge pages
//! ([`joined`]): a copy into many small allocations costs a page fault per 4 KiB, which on
//! this class of VM is most of its time.

use std::ffi::c_void;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchIterator, StructArray};
use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use telemetron::telem::{DataType, Series, arrow};

use crate::error::invalid;

/// Capsule payloads must be `Send`; the FFI structs hold raw pointers to memory they own.
#[repr(transparent)]
struct SendBox<T>(T);
// SAFETY: the pointed-to memory is owned by the struct's private data (Arrow buffers over
// reference-counted `Bytes`, which are Send + Sync) and is only freed by its `release`.
unsafe impl<T> Send for SendBox<T> {}

/// One exported column: its name, engine type and Arrow array.
pub struct Column {
    name: String,
    data_type: DataType,
    array: ArrayRef,
}

fn err(e: telemetron::telem::SeriesError) -> PyErr {
    crate::error::to_py(e.into())
}

impl Column {
    /// The column for one channel's series (zero-copy for one series, except booleans).
    pub fn new(name: &str, dt: DataType, parts: &[&Series]) -> PyResult<Column> {
        let owned: Vec<Series> = parts.iter().map(|s| (*s).clone()).collect();
        Ok(Column { name: name.to_string(), data_type: dt, array: arrow::parts_array(dt, &owned).map_err(err)? })
    }

    /// A fixed-size column whose `len` samples are already in one buffer.
    pub fn fixed(name: &str, dt: DataType, len: usize, data: Bytes) -> PyResult<Column> {
        Ok(Column { name: name.to_string(), data_type: dt, array: arrow::fixed_array(dt, len, data).map_err(err)? })
    }

    /// Address of the data buffer (for zero-copy checks).
    pub fn data_ptr(&self) -> usize {
        self.array.to_data().buffers().last().map_or(0, |b| b.as_ptr() as usize)
    }
}

fn batch(cols: Vec<Column>) -> PyResult<RecordBatch> {
    if cols.iter().any(|c| c.name.contains('\0')) {
        return Err(invalid("channel names with NUL bytes cannot be exported to Arrow"));
    }
    arrow::batch(cols.into_iter().map(|c| (c.name, c.data_type, c.array)).collect()).map_err(|e| invalid(e.to_string()))
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

/// `(schema capsule, array capsule)` for `__arrow_c_array__`: the batch as a struct array.
pub fn c_array(py: Python<'_>, cols: Vec<Column>) -> PyResult<(Bound<'_, PyCapsule>, Bound<'_, PyCapsule>)> {
    let b = batch(cols)?;
    let data = StructArray::from(b).into_data();
    let schema = FFI_ArrowSchema::try_from(data.data_type()).map_err(|e| invalid(format!("Arrow schema: {e}")))?;
    // A consumer moves the structs out of the capsules and clears their `release`; the
    // FFI types' own `Drop` releases whatever is left when a capsule is collected.
    let s = PyCapsule::new_with_value(py, SendBox(schema), c"arrow_schema")?;
    let a = PyCapsule::new_with_value(py, SendBox(FFI_ArrowArray::new(&data)), c"arrow_array")?;
    Ok((s, a))
}

/// The capsule for `__arrow_c_stream__` (one record batch).
pub fn c_stream(py: Python<'_>, cols: Vec<Column>) -> PyResult<Bound<'_, PyCapsule>> {
    let b = batch(cols)?;
    let schema = b.schema();
    let reader = RecordBatchIterator::new(vec![Ok(b)], Arc::clone(&schema));
    PyCapsule::new_with_value(py, SendBox(FFI_ArrowArrayStream::new(Box::new(reader))), c"arrow_array_stream")
}
