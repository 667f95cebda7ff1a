//! `telem`: time, series and frames between JavaScript and the core.
//!
//! ## Out (Rust → JS): no copy
//! A fixed-size [`Series`] becomes a typed array over the series' own buffer: an external
//! `ArrayBuffer` whose finalizer holds a clone of the series (a refcount on its
//! `bytes::Bytes`), so the memory lives exactly as long as the JS view. Timestamps and
//! `i64` become `BigInt64Array`, `u64` `BigUint64Array`, `bool` a `Uint8Array` of 0/1.
//! Variable-length types (`string`, `json`, `uuid`, `bytes`) are copied into JS strings /
//! `Buffer`s (JS has no view type for them). Memory the engine hands out twice (fan-out to
//! several streamers, repeated reads of a mapped segment) becomes one `ArrayBuffer` shared by
//! the typed arrays (see `externals`); a typed array this process wrote that comes back
//! (an embedded streamer) is shown through the writer's own `ArrayBuffer`.
//!
//! ## In (JS → Rust): no copy for typed arrays
//! A typed array whose element type matches the channel is not copied: the series'
//! `Bytes` owns a napi reference to the typed array, so the JS buffer stays alive (even after
//! the write's promise settles) for as long as any part of the engine still holds the
//! series: the writer until it commits, live streamers in this process until they drop
//! the frame. Plain arrays (`number[]`, `bigint[]`, `boolean[]`, `string[]`) and scalars
//! are converted, which copies. A typed array of the wrong element type is an error, never
//! a silent conversion.

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use telemetron::channel::Channel;
use telemetron::telem::{DataType, Frame, Reduction, Series, TimeRange, TimeStamp};

use crate::error::{coded, invalid};

/// A timestamp from a JS `bigint` of nanoseconds.
pub(crate) fn timestamp(b: &BigInt) -> Result<TimeStamp> {
    let (v, lossless) = b.get_i64();
    if !lossless {
        return Err(invalid(format!("timestamp {v}… does not fit in 64 bits of nanoseconds; pass a bigint in [-2^63, 2^63)")));
    }
    Ok(TimeStamp(v))
}

/// A JS `bigint` from nanoseconds.
pub(crate) fn big(v: i64) -> BigInt {
    BigInt::from(v)
}

/// `[start, end)` in nanoseconds since the Unix epoch.
#[napi(object)]
pub struct TimeRangeJs {
    /// Inclusive start (ns).
    pub start: BigInt,
    /// Exclusive end (ns).
    pub end: BigInt,
}

impl TimeRangeJs {
    pub(crate) fn to_core(&self) -> Result<TimeRange> {
        let r = TimeRange::new(timestamp(&self.start)?, timestamp(&self.end)?);
        if !r.is_valid() {
            return Err(invalid(format!("time range {r} ends before it starts; pass start <= end")));
        }
        Ok(r)
    }

    pub(crate) fn from_core(r: TimeRange) -> TimeRangeJs {
        TimeRangeJs { start: big(r.start.0), end: big(r.end.0) }
    }
}

/// A reduction asked for by a read or an iterator: `points` per channel at most, `reduce`
/// `"minmax"` (default) or `"average"`.
pub(crate) fn reduction(points: Option<f64>, reduce: Option<&str>) -> Result<Option<Reduction>> {
    let Some(p) = points else { return Ok(None) };
    if !(p >= 0.0 && p.fract() == 0.0) {
        return Err(invalid(format!("points {p} must be a whole number of points")));
    }
    Reduction::from_parts(p as u64, reduce).map(Some).map_err(invalid)
}

/// Parse a data type name (`"f64"`, `"float64"`, `"timestamp"`, ...).
pub(crate) fn data_type(name: &str) -> Result<DataType> {
    name.parse::<DataType>().map_err(|e| invalid(e.to_string()))
}

// ---------------------------------------------------------------------------------------
// In: JS values -> columns -> series
// ---------------------------------------------------------------------------------------

/// A typed array held by reference (no copy) that can back a `Bytes`.
struct JsBuffer<A>(A);

macro_rules! js_buffer {
    ($($ta:ty => $t:ty),* $(,)?) => {$(
        impl AsRef<[u8]> for JsBuffer<$ta> {
            fn as_ref(&self) -> &[u8] {
                let s: &[$t] = self.0.as_ref();
                // SAFETY: plain numeric samples; the typed array keeps the JS buffer alive
                // through its napi reference for as long as this value lives.
                unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
            }
        }
    )*};
}

js_buffer!(Float64Array => f64, Float32Array => f32, Int8Array => i8, Int16Array => i16, Int32Array => i32,
    Uint8Array => u8, Uint16Array => u16, Uint32Array => u32, BigInt64Array => i64, BigUint64Array => u64);

/// One channel's samples as received from JavaScript, before the channel's type is known.
pub(crate) enum Column {
    F64(Float64Array),
    F32(Float32Array),
    I8(Int8Array),
    I16(Int16Array),
    I32(Int32Array),
    U8(Uint8Array),
    U16(Uint16Array),
    U32(Uint32Array),
    I64(BigInt64Array),
    U64(BigUint64Array),
    Numbers(Vec<f64>),
    BigInts(Vec<i128>),
    Bools(Vec<bool>),
    Strings(Vec<String>),
    Blobs(Vec<Vec<u8>>),
}

fn raw_type(env: sys::napi_env, v: sys::napi_value) -> Result<ValueType> {
    let mut t = 0;
    // SAFETY: env and value come from a live callback scope.
    let st = unsafe { sys::napi_typeof(env, v, &mut t) };
    if st != sys::Status::napi_ok {
        return Err(invalid("could not inspect a value"));
    }
    Ok(ValueType::from(t))
}

fn is_typed_array(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut b = false;
    // SAFETY: as above.
    unsafe { sys::napi_is_typedarray(env, v, &mut b) };
    b
}

fn is_array(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut b = false;
    // SAFETY: as above.
    unsafe { sys::napi_is_array(env, v, &mut b) };
    b
}

fn typed_array_type(env: sys::napi_env, v: sys::napi_value) -> Result<(TypedArrayType, usize)> {
    let mut t = 0;
    let mut len = 0;
    let mut data = std::ptr::null_mut();
    let mut ab = std::ptr::null_mut();
    let mut off = 0;
    // SAFETY: `v` is a typed array (checked by the caller).
    let st = unsafe { sys::napi_get_typedarray_info(env, v, &mut t, &mut len, &mut data, &mut ab, &mut off) };
    if st != sys::Status::napi_ok {
        return Err(invalid("could not inspect a typed array"));
    }
    Ok((TypedArrayType::from(t), data as usize))
}

/// The data address of a typed array as Rust sees it (0 for anything else).
pub(crate) fn typed_array_address(v: &Unknown) -> Result<f64> {
    let val = v.value();
    if !is_typed_array(val.env, val.value) {
        return Ok(0.0);
    }
    Ok(typed_array_type(val.env, val.value)?.1 as f64)
}

impl Column {
    /// Take a JS value apart without copying typed arrays. Runs on the JS thread.
    pub(crate) fn from_js(v: &Unknown) -> Result<Column> {
        let val = v.value();
        let (env, raw) = (val.env, val.value);
        // SAFETY (all casts below): the JS type was checked first.
        unsafe {
            match raw_type(env, raw)? {
                ValueType::Number => Ok(Column::Numbers(vec![f64::from_napi_value(env, raw)?])),
                ValueType::BigInt => Ok(Column::BigInts(vec![BigInt::from_napi_value(env, raw)?.get_i128().0])),
                ValueType::Boolean => Ok(Column::Bools(vec![bool::from_napi_value(env, raw)?])),
                ValueType::String => Ok(Column::Strings(vec![String::from_napi_value(env, raw)?])),
                ValueType::Object if is_typed_array(env, raw) => {
                    let (t, _) = typed_array_type(env, raw)?;
                    externals::remember_js(env, raw);
                    Ok(match t {
                        TypedArrayType::Float64 => Column::F64(Float64Array::from_napi_value(env, raw)?),
                        TypedArrayType::Float32 => Column::F32(Float32Array::from_napi_value(env, raw)?),
                        TypedArrayType::Int8 => Column::I8(Int8Array::from_napi_value(env, raw)?),
                        TypedArrayType::Int16 => Column::I16(Int16Array::from_napi_value(env, raw)?),
                        TypedArrayType::Int32 => Column::I32(Int32Array::from_napi_value(env, raw)?),
                        TypedArrayType::Uint8 => Column::U8(Uint8Array::from_napi_value(env, raw)?),
                        TypedArrayType::Uint16 => Column::U16(Uint16Array::from_napi_value(env, raw)?),
                        TypedArrayType::Uint32 => Column::U32(Uint32Array::from_napi_value(env, raw)?),
                        TypedArrayType::BigInt64 => Column::I64(BigInt64Array::from_napi_value(env, raw)?),
                        TypedArrayType::BigUint64 => Column::U64(BigUint64Array::from_napi_value(env, raw)?),
                        other => {
                            return Err(invalid(format!(
                                "{}Array is not supported; pass a Float64Array, Float32Array, (Big)Int*/Uint*Array or a plain array",
                                other.as_ref()
                            )));
                        }
                    })
                }
                ValueType::Object if is_array(env, raw) => {
                    let items = Vec::<Unknown>::from_napi_value(env, raw)?;
                    let Some(first) = items.first() else { return Ok(Column::Numbers(Vec::new())) };
                    let first = first.value();
                    let what = raw_type(first.env, first.value)?;
                    let bad = |e: Error| {
                        invalid(format!(
                            "arrays must hold one kind of value (all numbers, bigints, booleans, strings or Uint8Arrays): {}",
                            e.reason
                        ))
                    };
                    match what {
                        ValueType::Number => Ok(Column::Numbers(Vec::<f64>::from_napi_value(env, raw).map_err(bad)?)),
                        ValueType::BigInt => Ok(Column::BigInts(
                            Vec::<BigInt>::from_napi_value(env, raw).map_err(bad)?.iter().map(|b| b.get_i128().0).collect(),
                        )),
                        ValueType::Boolean => Ok(Column::Bools(Vec::<bool>::from_napi_value(env, raw).map_err(bad)?)),
                        ValueType::String => Ok(Column::Strings(Vec::<String>::from_napi_value(env, raw).map_err(bad)?)),
                        ValueType::Object if is_typed_array(first.env, first.value) => Ok(Column::Blobs(
                            Vec::<Uint8Array>::from_napi_value(env, raw).map_err(bad)?.iter().map(|a| a.to_vec()).collect(),
                        )),
                        _ => Err(invalid("array elements must be numbers, bigints, booleans, strings or Uint8Arrays")),
                    }
                }
                _ => Err(invalid("samples must be a typed array, an array of numbers/bigints/booleans/strings, or a single such value")),
            }
        }
    }

    fn js_name(&self) -> &'static str {
        match self {
            Column::F64(_) => "Float64Array",
            Column::F32(_) => "Float32Array",
            Column::I8(_) => "Int8Array",
            Column::I16(_) => "Int16Array",
            Column::I32(_) => "Int32Array",
            Column::U8(_) => "Uint8Array",
            Column::U16(_) => "Uint16Array",
            Column::U32(_) => "Uint32Array",
            Column::I64(_) => "BigInt64Array",
            Column::U64(_) => "BigUint64Array",
            Column::Numbers(_) => "numbers",
            Column::BigInts(_) => "bigints",
            Column::Bools(_) => "booleans",
            Column::Strings(_) => "strings",
            Column::Blobs(_) => "Uint8Arrays",
        }
    }

    /// The series for `ch`: typed arrays of the channel's element type are shared, plain
    /// values are converted (checked: integers must be whole and in range).
    pub(crate) fn into_series(self, ch: &Channel) -> Result<Series> {
        let dt = ch.data_type;
        let mismatch = |got: &str| {
            coded(
                "write.type_mismatch",
                format!("channel {:?} holds {dt} samples, got {got}; pass {} or a plain array", ch.name, js_type_for(dt)),
            )
        };
        let shared = |b: Bytes| Series::from_bytes(dt, b).map_err(|e| invalid(e.to_string()));
        let self_name = self.js_name();
        macro_rules! zc {
            ($a:expr, $($ok:ident)|+) => {
                if matches!(dt, $(DataType::$ok)|+) { shared(Bytes::from_owner(JsBuffer($a))) } else { Err(mismatch(self_name)) }
            };
        }
        match self {
            Column::F64(a) => zc!(a, F64),
            Column::F32(a) => zc!(a, F32),
            Column::I8(a) => zc!(a, I8),
            Column::I16(a) => zc!(a, I16),
            Column::I32(a) => zc!(a, I32),
            Column::U8(a) => zc!(a, U8 | Bool),
            Column::U16(a) => zc!(a, U16),
            Column::U32(a) => zc!(a, U32),
            Column::I64(a) => zc!(a, I64 | Timestamp),
            Column::U64(a) => zc!(a, U64),
            Column::Numbers(v) if v.is_empty() => Ok(Series::empty_of(dt)),
            Column::Numbers(v) => numbers(v, dt, &ch.name).ok_or_else(|| mismatch(self_name))?,
            Column::BigInts(v) => bigints(&v, dt, &ch.name).ok_or_else(|| mismatch(self_name))?,
            Column::Bools(v) if dt == DataType::Bool => Ok(Series::bools(&v)),
            Column::Strings(v) => match dt {
                DataType::String => Ok(Series::strings(&v)),
                DataType::Json => Series::json(&v).map_err(|e| invalid(format!("channel {:?}: {e}", ch.name))),
                DataType::Uuid => {
                    let ids: std::result::Result<Vec<uuid::Uuid>, _> = v.iter().map(|s| uuid::Uuid::parse_str(s)).collect();
                    Ok(Series::uuids(&ids.map_err(|e| invalid(format!("channel {:?}: {e}; pass UUID strings", ch.name)))?))
                }
                _ => Err(mismatch(self_name)),
            },
            Column::Blobs(v) if dt == DataType::Bytes => Ok(Series::byte_values(&v)),
            _ => Err(mismatch(self_name)),
        }
    }
}

/// The zero-copy JS type for a data type.
fn js_type_for(dt: DataType) -> &'static str {
    match dt {
        DataType::F64 => "a Float64Array",
        DataType::F32 => "a Float32Array",
        DataType::I8 => "an Int8Array",
        DataType::I16 => "an Int16Array",
        DataType::I32 => "an Int32Array",
        DataType::U8 | DataType::Bool => "a Uint8Array",
        DataType::U16 => "a Uint16Array",
        DataType::U32 => "a Uint32Array",
        DataType::I64 | DataType::Timestamp => "a BigInt64Array",
        DataType::U64 => "a BigUint64Array",
        DataType::Uuid | DataType::String | DataType::Json => "strings",
        DataType::Bytes => "Uint8Arrays",
    }
}

fn whole(v: &[f64], lo: f64, hi: f64, name: &str, dt: DataType) -> Result<()> {
    if let Some(i) = v.iter().position(|x| x.fract() != 0.0 || *x < lo || *x > hi || !x.is_finite()) {
        return Err(invalid(format!("channel {name:?} holds {dt} samples but sample {i} is {}; pass whole numbers in range", v[i])));
    }
    Ok(())
}

/// Numbers converted to `dt` (`None` if `dt` takes no numbers).
fn numbers(v: Vec<f64>, dt: DataType, name: &str) -> Option<Result<Series>> {
    macro_rules! ints {
        ($t:ty) => {
            whole(&v, <$t>::MIN as f64, <$t>::MAX as f64, name, dt)
                .map(|_| Series::from_vec(v.iter().map(|&x| x as $t).collect::<Vec<$t>>()))
        };
    }
    Some(match dt {
        DataType::F64 => Ok(Series::from_vec(v)),
        DataType::F32 => Ok(Series::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>())),
        DataType::I8 => ints!(i8),
        DataType::I16 => ints!(i16),
        DataType::I32 => ints!(i32),
        DataType::I64 => ints!(i64),
        DataType::U8 => ints!(u8),
        DataType::U16 => ints!(u16),
        DataType::U32 => ints!(u32),
        DataType::U64 => ints!(u64),
        DataType::Timestamp => {
            whole(&v, i64::MIN as f64, i64::MAX as f64, name, dt).map(|_| Series::timestamps(v.iter().map(|&x| x as i64).collect()))
        }
        DataType::Bool => whole(&v, 0.0, 1.0, name, dt).map(|_| Series::bools(&v.iter().map(|&x| x != 0.0).collect::<Vec<_>>())),
        _ => return None,
    })
}

/// Bigints converted to `dt` (`None` if `dt` takes no integers).
fn bigints(v: &[i128], dt: DataType, name: &str) -> Option<Result<Series>> {
    macro_rules! ints {
        ($t:ty) => {
            match v.iter().position(|&x| <$t>::try_from(x).is_err()) {
                Some(i) => Err(invalid(format!("channel {name:?} holds {dt} samples but sample {i} ({}) is out of range", v[i]))),
                None => Ok(Series::from_vec(v.iter().map(|&x| x as $t).collect::<Vec<$t>>())),
            }
        };
    }
    Some(match dt {
        DataType::I8 => ints!(i8),
        DataType::I16 => ints!(i16),
        DataType::I32 => ints!(i32),
        DataType::I64 => ints!(i64),
        DataType::U8 => ints!(u8),
        DataType::U16 => ints!(u16),
        DataType::U32 => ints!(u32),
        DataType::U64 => ints!(u64),
        DataType::Timestamp => ints!(i64).and_then(|s| s.cast(DataType::Timestamp).map_err(|e| invalid(e.to_string()))),
        DataType::F64 => Ok(Series::from_vec(v.iter().map(|&x| x as f64).collect::<Vec<f64>>())),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Out: series -> typed arrays over Rust memory
// ---------------------------------------------------------------------------------------

/// The samples of a series, converted to JS on the JS thread (see the module docs).
pub struct SeriesData(pub(crate) Series);

impl TypeName for SeriesData {
    fn type_name() -> &'static str {
        "SeriesData"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// One live external `ArrayBuffer` per Rust buffer (pitfall P16 of the bindings recipe).
///
/// Series often share memory: every streamer in this process receives the same buffers,
/// and two reads of the same stored range return views of the same mapped segment. Rather
/// than give V8 several external `ArrayBuffer`s over one address (which old V8 versions
/// aborted on, and which napi-rs debug builds reject), the first view of an address is
/// remembered through a weak reference, and later series starting at that address become
/// typed arrays over the same `ArrayBuffer` while it is alive. The map is per JS thread
/// (conversions and napi finalizers both run there).
mod externals {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    use napi::sys;

    struct Entry {
        bytes: usize,
        id: u64,
        weak: sys::napi_ref,
    }

    /// A JS-owned buffer that was written: its `ArrayBuffer` (weak) and where the view sat.
    struct JsEntry {
        weak: sys::napi_ref,
        offset: usize,
        bytes: usize,
    }

    thread_local! {
        static MAP: RefCell<HashMap<usize, Entry>> = RefCell::new(HashMap::new());
        static NEXT: Cell<u64> = const { Cell::new(1) };
        static JS: RefCell<HashMap<usize, JsEntry>> = RefCell::new(HashMap::new());
    }

    /// Entries kept before dead ones are swept.
    const JS_SWEEP_AT: usize = 1024;

    fn alive(env: sys::napi_env, weak: sys::napi_ref) -> Option<sys::napi_value> {
        let mut v = std::ptr::null_mut();
        // SAFETY: `weak` was created on this thread and is deleted only here.
        if unsafe { sys::napi_get_reference_value(env, weak, &mut v) } != sys::Status::napi_ok || v.is_null() {
            return None;
        }
        let mut detached = false;
        // SAFETY: `v` is a live ArrayBuffer.
        unsafe { sys::napi_is_detached_arraybuffer(env, v, &mut detached) };
        (!detached).then_some(v)
    }

    /// Remember the JS `ArrayBuffer` behind a typed array that is being written, so that the
    /// same memory coming back (an embedded streamer in this process) is shown through that
    /// very `ArrayBuffer` instead of a second one over the same address.
    pub(super) fn remember_js(env: sys::napi_env, view: sys::napi_value) {
        let (mut t, mut len, mut data, mut ab, mut off) = (0, 0, std::ptr::null_mut(), std::ptr::null_mut(), 0);
        // SAFETY: `view` is a typed array (checked by the caller) on this thread's env.
        if unsafe { sys::napi_get_typedarray_info(env, view, &mut t, &mut len, &mut data, &mut ab, &mut off) } != sys::Status::napi_ok
            || data.is_null()
        {
            return;
        }
        let mut blen = 0;
        let mut base = std::ptr::null_mut();
        // SAFETY: `ab` is the view's ArrayBuffer.
        if unsafe { sys::napi_get_arraybuffer_info(env, ab, &mut base, &mut blen) } != sys::Status::napi_ok {
            return;
        }
        let mut weak = std::ptr::null_mut();
        // SAFETY: refcount 0: a weak reference to a live object.
        if unsafe { sys::napi_create_reference(env, ab, 0, &mut weak) } != sys::Status::napi_ok {
            return;
        }
        let entry = JsEntry { weak, offset: off, bytes: blen.saturating_sub(off) };
        JS.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= JS_SWEEP_AT {
                m.retain(|_, e| {
                    let keep = alive(env, e.weak).is_some();
                    if !keep {
                        // SAFETY: created on this thread; removed from the map here.
                        unsafe { sys::napi_delete_reference(env, e.weak) };
                    }
                    keep
                });
            }
            if let Some(old) = m.insert(data as usize, entry) {
                // SAFETY: as above.
                unsafe { sys::napi_delete_reference(env, old.weak) };
            }
        });
    }

    /// The live JS `ArrayBuffer` and byte offset whose memory starts at `addr` and holds
    /// `bytes`, if this process wrote such a typed array.
    pub(super) fn lookup_js(env: sys::napi_env, addr: usize, bytes: usize) -> Option<(sys::napi_value, usize)> {
        JS.with(|m| {
            let mut m = m.borrow_mut();
            let e = m.get(&addr)?;
            match alive(env, e.weak) {
                Some(ab) if e.bytes >= bytes => {
                    // The buffer may have been resized since: check its current length.
                    let (mut base, mut blen) = (std::ptr::null_mut(), 0);
                    // SAFETY: `ab` is a live ArrayBuffer.
                    let ok = unsafe { sys::napi_get_arraybuffer_info(env, ab, &mut base, &mut blen) } == sys::Status::napi_ok;
                    (ok && base as usize + e.offset == addr && e.offset + bytes <= blen).then_some((ab, e.offset))
                }
                Some(_) => None,
                None => {
                    if let Some(dead) = m.remove(&addr) {
                        // SAFETY: created on this thread; just removed from the map.
                        unsafe { sys::napi_delete_reference(env, dead.weak) };
                    }
                    None
                }
            }
        })
    }

    pub(super) fn next_id() -> u64 {
        NEXT.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        })
    }

    /// The live `ArrayBuffer` over `addr` holding at least `bytes`, if any.
    ///
    /// # Safety
    /// `env` is the current JS thread's env.
    pub(super) unsafe fn lookup(env: sys::napi_env, addr: usize, bytes: usize) -> Option<sys::napi_value> {
        MAP.with(|m| {
            let m = m.borrow();
            let e = m.get(&addr)?;
            if e.bytes < bytes {
                return None;
            }
            let mut v = std::ptr::null_mut();
            // SAFETY: `e.weak` is a reference created on this thread and not yet deleted.
            if unsafe { sys::napi_get_reference_value(env, e.weak, &mut v) } != sys::Status::napi_ok || v.is_null() {
                return None;
            }
            let mut detached = false;
            // SAFETY: `v` is a live ArrayBuffer.
            unsafe { sys::napi_is_detached_arraybuffer(env, v, &mut detached) };
            (!detached).then_some(v)
        })
    }

    /// Remember the `ArrayBuffer` behind the typed array `view` for `addr`.
    ///
    /// # Safety
    /// `env` is the current JS thread's env and `view` a typed array created on it.
    pub(super) unsafe fn remember(env: sys::napi_env, addr: usize, bytes: usize, id: u64, view: sys::napi_value) {
        let mut ab = std::ptr::null_mut();
        let (mut t, mut len, mut data, mut off) = (0, 0, std::ptr::null_mut(), 0);
        // SAFETY: `view` is a typed array.
        if unsafe { sys::napi_get_typedarray_info(env, view, &mut t, &mut len, &mut data, &mut ab, &mut off) } != sys::Status::napi_ok {
            return;
        }
        let mut weak = std::ptr::null_mut();
        // SAFETY: `ab` is a live ArrayBuffer; refcount 0 makes the reference weak.
        if unsafe { sys::napi_create_reference(env, ab, 0, &mut weak) } != sys::Status::napi_ok {
            return;
        }
        if let Some(old) = MAP.with(|m| m.borrow_mut().insert(addr, Entry { bytes, id, weak })) {
            // SAFETY: created on this thread; no other holder.
            unsafe { sys::napi_delete_reference(env, old.weak) };
        }
    }

    /// Forget `addr` when the `ArrayBuffer` remembered under `id` is finalized.
    pub(super) fn forget(env: sys::napi_env, addr: usize, id: u64) {
        let gone = MAP.with(|m| {
            let mut m = m.borrow_mut();
            if m.get(&addr).is_some_and(|e| e.id == id) { m.remove(&addr) } else { None }
        });
        if let Some(e) = gone {
            // SAFETY: finalizers run on the JS thread that owns the map and the reference.
            unsafe { sys::napi_delete_reference(env, e.weak) };
        }
    }

    /// A typed array of `kind` with `len` elements at `offset` bytes into `ab`.
    ///
    /// # Safety
    /// `env` is the current JS thread's env and `ab` a live ArrayBuffer.
    pub(super) unsafe fn typed_array(
        env: sys::napi_env,
        kind: i32,
        len: usize,
        ab: sys::napi_value,
        offset: usize,
    ) -> napi::Result<sys::napi_value> {
        let mut v = std::ptr::null_mut();
        // SAFETY: as documented.
        let st = unsafe { sys::napi_create_typedarray(env, kind, len, ab, offset, &mut v) };
        if st != sys::Status::napi_ok {
            return Err(napi::Error::from_reason("creating a typed array over a shared buffer failed"));
        }
        Ok(v)
    }
}

/// A typed array over the series' own buffer; its finalizer drops a clone of the series.
macro_rules! view {
    ($env:expr, $s:expr, $ta:ty, $t:ty, $kind:expr) => {{
        let s: Series = $s;
        let ptr = s.data().as_ptr() as *mut $t;
        let len = s.len();
        if len == 0 {
            // SAFETY: called from `to_napi_value` with its env.
            unsafe { <$ta>::to_napi_value($env, <$ta>::new(Vec::new())) }
        } else if (ptr as usize) % std::mem::align_of::<$t>() != 0 {
            // Never happens for series built by the core (buffers are aligned); copy rather
            // than hand V8 a misaligned view.
            let v: Vec<$t> =
                s.data().chunks_exact(std::mem::size_of::<$t>()).map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default())).collect();
            // SAFETY: as above.
            unsafe { <$ta>::to_napi_value($env, <$ta>::new(v)) }
        } else {
            let addr = ptr as usize;
            let bytes = len * std::mem::size_of::<$t>();
            if let Some((ab, offset)) = externals::lookup_js($env, addr, bytes) {
                // JS-owned memory written by this process: a view over the writer's own
                // ArrayBuffer (V8 keeps it alive; the series is not needed).
                drop(s);
                // SAFETY: `ab` is live and holds `offset + bytes` bytes.
                unsafe { externals::typed_array($env, $kind as i32, len, ab, offset) }
            // SAFETY: on the JS thread with its env.
            } else if let Some(ab) = unsafe { externals::lookup($env, addr, bytes) } {
                // The live ArrayBuffer's finalizer holds a series over (at least) these bytes.
                drop(s);
                // SAFETY: `ab` is live.
                unsafe { externals::typed_array($env, $kind as i32, len, ab, 0) }
            } else {
                let id = externals::next_id();
                let env = $env as usize;
                // SAFETY: the closure owns `s`, whose buffer stays allocated (and is never
                // written by Rust) until V8 finalizes the ArrayBuffer; finalizers run on the JS
                // thread, where `env` is valid.
                let arr = unsafe {
                    <$ta>::with_external_data(ptr, len, move |_, _| {
                        externals::forget(env as sys::napi_env, addr, id);
                        drop(s)
                    })
                };
                // SAFETY: called from `to_napi_value` with its env.
                let v = unsafe { <$ta>::to_napi_value($env, arr)? };
                // SAFETY: `v` was just created on this env.
                unsafe { externals::remember($env, addr, bytes, id, v) };
                Ok(v)
            }
        }
    }};
}

impl ToNapiValue for SeriesData {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let s = val.0;
        match s.data_type() {
            DataType::F64 => view!(env, s, Float64Array, f64, TypedArrayType::Float64),
            DataType::F32 => view!(env, s, Float32Array, f32, TypedArrayType::Float32),
            DataType::I8 => view!(env, s, Int8Array, i8, TypedArrayType::Int8),
            DataType::I16 => view!(env, s, Int16Array, i16, TypedArrayType::Int16),
            DataType::I32 => view!(env, s, Int32Array, i32, TypedArrayType::Int32),
            DataType::I64 | DataType::Timestamp => view!(env, s, BigInt64Array, i64, TypedArrayType::BigInt64),
            DataType::U8 | DataType::Bool => view!(env, s, Uint8Array, u8, TypedArrayType::Uint8),
            DataType::U16 => view!(env, s, Uint16Array, u16, TypedArrayType::Uint16),
            DataType::U32 => view!(env, s, Uint32Array, u32, TypedArrayType::Uint32),
            DataType::U64 => view!(env, s, BigUint64Array, u64, TypedArrayType::BigUint64),
            DataType::Uuid => {
                let v: Vec<String> =
                    s.data().chunks_exact(16).map(|c| uuid::Uuid::from_slice(c).map(|u| u.to_string()).unwrap_or_default()).collect();
                // SAFETY: as above.
                unsafe { Vec::<String>::to_napi_value(env, v) }
            }
            DataType::String | DataType::Json => {
                let v: Vec<String> = (0..s.len()).map(|i| s.value_str(i).unwrap_or_default().to_string()).collect();
                // SAFETY: as above.
                unsafe { Vec::<String>::to_napi_value(env, v) }
            }
            DataType::Bytes => {
                let v: Vec<Buffer> = (0..s.len()).map(|i| Buffer::from(s.value_bytes(i).unwrap_or_default().to_vec())).collect();
                // SAFETY: as above.
                unsafe { Vec::<Buffer>::to_napi_value(env, v) }
            }
        }
    }
}

/// One series of a frame.
#[napi(object, object_from_js = false)]
pub struct SeriesJs {
    /// The data type name (`"f64"`, `"timestamp"`, ...).
    pub data_type: String,
    /// The samples: a typed array over Rust memory for fixed-size types, an array of
    /// strings (`string`, `json`, `uuid`) or `Buffer`s (`bytes`).
    #[napi(
        ts_type = "Float64Array | Float32Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array | string[] | Buffer[]"
    )]
    pub data: SeriesData,
    /// The time range of the samples (`[first, last + 1)` for stored data).
    pub time_range: TimeRangeJs,
    /// `(domain << 32) | sample` position of the first sample.
    pub alignment: BigInt,
    /// Address of the Rust-side buffer (for zero-copy checks; 0 when empty).
    pub address: f64,
}

impl SeriesJs {
    pub(crate) fn from_core(s: Series) -> SeriesJs {
        SeriesJs {
            data_type: s.data_type().name().to_string(),
            time_range: TimeRangeJs::from_core(s.time_range()),
            alignment: BigInt::from(s.alignment().0),
            address: if s.is_empty() { 0.0 } else { s.data().as_ptr() as usize as f64 },
            data: SeriesData(s),
        }
    }
}

/// Series keyed by channel key, in order (a channel may appear more than once).
#[napi(object, object_from_js = false)]
pub struct FrameJs {
    /// The channel key of each series.
    pub keys: Vec<u32>,
    /// The series.
    pub series: Vec<SeriesJs>,
}

impl FrameJs {
    pub(crate) fn from_core(f: Frame) -> FrameJs {
        let (keys, series) = f.into_parts();
        FrameJs { keys, series: series.into_iter().map(SeriesJs::from_core).collect() }
    }
}

/// Columns for channels, converted on the JS thread.
pub(crate) fn columns(values: &[Unknown]) -> Result<Vec<Column>> {
    values.iter().map(Column::from_js).collect()
}

/// Build a frame from resolved channels and their columns.
pub(crate) fn frame(channels: &[&Channel], columns: Vec<Column>) -> Result<Frame> {
    let mut f = Frame::with_capacity(columns.len());
    for (ch, col) in channels.iter().zip(columns) {
        f.push(ch.key, col.into_series(ch)?);
    }
    Ok(f)
}
