//! Series and frames as Arrow arrays and record batches (the `arrow` crates), without copying
//! sample buffers (feature `arrow`).
//!
//! A [`Series`] becomes one Arrow array whose buffers are the series' own reference-counted
//! bytes ([`arrow_buffer::Buffer`] from [`bytes::Bytes`] shares them): fixed-size numbers,
//! timestamps, uuids, strings, JSON and bytes are exported **without copying**. Booleans are
//! bit-packed (Arrow stores one bit per value, the engine one byte), so they are the one type
//! that is converted. A buffer whose address is not aligned for its type is copied once
//! (Arrow requires alignment; the engine's own buffers are aligned).
//!
//! | engine type | Arrow type | field metadata `telemetron.data_type` |
//! |---|---|---|
//! | `u8` … `i64`, `f32`, `f64` | `UInt8` … `Int64`, `Float32`, `Float64` | the type name |
//! | `bool` | `Boolean` | `bool` |
//! | `timestamp` | `Timestamp(Nanosecond, "UTC")` | `timestamp` |
//! | `uuid` | `FixedSizeBinary(16)` (extension `arrow.uuid`) | `uuid` |
//! | `string` | `LargeUtf8` | `string` |
//! | `json` | `LargeUtf8` (extension `arrow.json`) | `json` |
//! | `bytes` | `LargeBinary` | `bytes` |
//!
//! The reverse, [`series_from_arrow`], takes any array of those Arrow types without nulls and
//! shares its buffers the same way. The dataflow runtime, the Python SDK's `to_arrow` and
//! `__arrow_c_stream__`, and Parquet/CSV export all go through this one mapping.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, make_array};
use arrow_buffer::{BooleanBuffer, Buffer};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType as ArrowType, Field, Schema, TimeUnit};
use bytes::Bytes;

use super::{DataType, Series, SeriesError};

/// Field metadata key that records the engine data type of a column.
pub const DATA_TYPE_KEY: &str = "telemetron.data_type";
const EXTENSION_KEY: &str = "ARROW:extension:name";

/// The Arrow type a channel of `dt` is exported as.
pub fn arrow_type(dt: DataType) -> ArrowType {
    match dt {
        DataType::U8 => ArrowType::UInt8,
        DataType::U16 => ArrowType::UInt16,
        DataType::U32 => ArrowType::UInt32,
        DataType::U64 => ArrowType::UInt64,
        DataType::I8 => ArrowType::Int8,
        DataType::I16 => ArrowType::Int16,
        DataType::I32 => ArrowType::Int32,
        DataType::I64 => ArrowType::Int64,
        DataType::F32 => ArrowType::Float32,
        DataType::F64 => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        DataType::Uuid => ArrowType::FixedSizeBinary(16),
        DataType::String | DataType::Json => ArrowType::LargeUtf8,
        DataType::Bytes => ArrowType::LargeBinary,
    }
}

/// The Arrow field of a channel named `name` of type `dt` (never nullable: a series has no
/// missing values), with the engine type in its metadata.
pub fn field(name: &str, dt: DataType) -> Field {
    let mut meta = HashMap::from([(DATA_TYPE_KEY.to_string(), dt.to_string())]);
    match dt {
        DataType::Uuid => {
            meta.insert(EXTENSION_KEY.into(), "arrow.uuid".into());
        }
        DataType::Json => {
            meta.insert(EXTENSION_KEY.into(), "arrow.json".into());
        }
        _ => {}
    }
    Field::new(name, arrow_type(dt), false).with_metadata(meta)
}

fn arrow_err(e: ArrowError) -> SeriesError {
    SeriesError::Arrow { reason: format!("Arrow: {e}") }
}

/// `len` fixed-size samples of `dt` in `data` (at least `len * density` bytes) as an array,
/// sharing the buffer (copied once only if misaligned).
///
/// # Errors
/// [`SeriesError::RaggedBuffer`] if `data` is too short, or the type is variable-length.
pub fn fixed_array(dt: DataType, len: usize, data: Bytes) -> Result<ArrayRef, SeriesError> {
    let Some(d) = dt.density() else {
        return Err(SeriesError::BadOffsets { reason: format!("{dt} is variable-length; use series_array") });
    };
    if data.len() < len * d {
        return Err(SeriesError::RaggedBuffer { len: data.len(), data_type: dt, density: d });
    }
    if dt == DataType::Bool {
        let bits = BooleanBuffer::collect_bool(len, |i| data[i] != 0);
        return Ok(Arc::new(arrow_array::BooleanArray::new(bits, None)));
    }
    let data = ArrayData::builder(arrow_type(dt))
        .len(len)
        .add_buffer(Buffer::from(data.slice(..len * d)))
        .align_buffers(true)
        .build()
        .map_err(arrow_err)?;
    Ok(make_array(data))
}

/// One series as an Arrow array (zero-copy except booleans; see the module docs).
///
/// # Errors
/// A [`SeriesError`] if the series' buffers do not form a valid Arrow array (cannot happen
/// for a series the engine produced).
pub fn series_array(s: &Series) -> Result<ArrayRef, SeriesError> {
    let dt = s.data_type();
    if dt.density().is_some() {
        return fixed_array(dt, s.len(), s.data().clone());
    }
    let offsets = s.offsets().cloned().unwrap_or_else(|| Bytes::from_static(&[0; 8]));
    let data = ArrayData::builder(arrow_type(dt))
        .len(s.len())
        .add_buffer(Buffer::from(offsets))
        .add_buffer(Buffer::from(s.data().clone()))
        .align_buffers(true)
        .build()
        .map_err(arrow_err)?;
    Ok(make_array(data))
}

/// A channel read as several series (`parts`) as one array: one part is shared as it is,
/// several are concatenated once.
///
/// # Errors
/// As [`Series::concat`] and [`series_array`].
pub fn parts_array(dt: DataType, parts: &[Series]) -> Result<ArrayRef, SeriesError> {
    match parts {
        [] => series_array(&Series::empty_of(dt)),
        [one] => series_array(one),
        many => series_array(&Series::concat(many)?),
    }
}

/// Named columns as one record batch (fields from [`field`]).
///
/// # Errors
/// [`SeriesError::Arrow`] if the columns have different lengths, naming them.
pub fn batch(columns: Vec<(String, DataType, ArrayRef)>) -> Result<RecordBatch, SeriesError> {
    if let Some(w) = columns.windows(2).find(|w| w[0].2.len() != w[1].2.len()) {
        return Err(SeriesError::Arrow {
            reason: format!(
                "channels {:?} ({} samples) and {:?} ({} samples) have different lengths; a record batch needs equal columns \
                 (select channels that share an index)",
                w[0].0,
                w[0].2.len(),
                w[1].0,
                w[1].2.len()
            ),
        });
    }
    let rows = columns.first().map_or(0, |c| c.2.len());
    let fields: Vec<Field> = columns.iter().map(|(n, dt, _)| field(n, *dt)).collect();
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, _, a)| a).collect();
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options).map_err(arrow_err)
}

/// The engine type of an Arrow field: its `telemetron.data_type` metadata when present,
/// otherwise the type of [`arrow_type`] that matches.
///
/// # Errors
/// [`SeriesError::Arrow`] for Arrow types the engine does not store.
pub fn data_type_of(f: &Field) -> Result<DataType, SeriesError> {
    if let Some(dt) = f.metadata().get(DATA_TYPE_KEY).and_then(|t| t.parse::<DataType>().ok())
        && arrow_type(dt) == *f.data_type()
    {
        return Ok(dt);
    }
    let dt = match f.data_type() {
        ArrowType::UInt8 => DataType::U8,
        ArrowType::UInt16 => DataType::U16,
        ArrowType::UInt32 => DataType::U32,
        ArrowType::UInt64 => DataType::U64,
        ArrowType::Int8 => DataType::I8,
        ArrowType::Int16 => DataType::I16,
        ArrowType::Int32 => DataType::I32,
        ArrowType::Int64 => DataType::I64,
        ArrowType::Float32 => DataType::F32,
        ArrowType::Float64 => DataType::F64,
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Timestamp(TimeUnit::Nanosecond, _) => DataType::Timestamp,
        ArrowType::FixedSizeBinary(16) => DataType::Uuid,
        ArrowType::LargeUtf8 if f.metadata().get(EXTENSION_KEY).is_some_and(|e| e == "arrow.json") => DataType::Json,
        ArrowType::LargeUtf8 => DataType::String,
        ArrowType::LargeBinary => DataType::Bytes,
        other => {
            return Err(SeriesError::Arrow {
                reason: format!("column {:?}: Arrow type {other} has no engine data type (cast it first)", f.name()),
            });
        }
    };
    Ok(dt)
}

/// An Arrow array of engine type `dt` as a series, sharing its buffers (booleans are
/// unpacked to one byte per sample).
///
/// # Errors
/// [`SeriesError::Arrow`] if the array has nulls or its type does not match `dt`;
/// the series' own checks (UTF-8, JSON) otherwise.
pub fn series_from_arrow(dt: DataType, a: &dyn Array) -> Result<Series, SeriesError> {
    if a.null_count() > 0 {
        return Err(SeriesError::Arrow {
            reason: format!("an Arrow column with {} nulls cannot be stored (a series has no missing values)", a.null_count()),
        });
    }
    if *a.data_type() != arrow_type(dt) {
        return Err(SeriesError::Arrow { reason: format!("Arrow type {} does not hold {dt} samples", a.data_type()) });
    }
    let data = a.to_data();
    if dt == DataType::Bool {
        let b = arrow_array::BooleanArray::from(data);
        let bytes: Vec<u8> = b.values().iter().map(u8::from).collect();
        return Series::from_bytes(dt, Bytes::from(bytes));
    }
    let bytes = |b: &Buffer| Bytes::from_owner(b.clone());
    match dt.density() {
        Some(d) => {
            let off = data.offset() * d;
            Series::from_bytes(dt, bytes(&data.buffers()[0]).slice(off..off + data.len() * d))
        }
        None => {
            let off = data.offset() * 8;
            Series::from_variable(dt, bytes(&data.buffers()[1]), bytes(&data.buffers()[0]).slice(off..off + (data.len() + 1) * 8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_without_copying() {
        let s = Series::from_vec((0..1000).map(f64::from).collect::<Vec<_>>());
        let a = series_array(&s).unwrap();
        assert_eq!(a.to_data().buffers()[0].as_ptr(), s.data().as_ptr(), "export shares the buffer");
        let back = series_from_arrow(DataType::F64, a.as_ref()).unwrap();
        assert_eq!(back.data().as_ptr(), s.data().as_ptr(), "import shares the buffer");
        assert_eq!(back.as_slice::<f64>().unwrap(), s.as_slice::<f64>().unwrap());
    }

    #[test]
    fn every_type_round_trips() {
        let cases = vec![
            Series::from_vec(vec![1u8, 2]),
            Series::from_vec(vec![-1i16, 2]),
            Series::from_vec(vec![u64::MAX, 0]),
            Series::from_vec(vec![1.5f32, -2.0]),
            Series::bools(&[true, false, true]),
            Series::timestamps(vec![1, 2, 3]),
            Series::uuids(&[uuid::Uuid::from_u128(7)]),
            Series::strings(&["a", "", "ünï"]),
            Series::json(&["{\"a\":1}", "[]"]).unwrap(),
            Series::byte_values(&[b"\x00\x01".as_slice(), b""]),
        ];
        for s in cases {
            let dt = s.data_type();
            let a = series_array(&s).unwrap();
            let f = field("c", dt);
            assert_eq!(data_type_of(&f).unwrap(), dt);
            let back = series_from_arrow(dt, a.as_ref()).unwrap();
            assert_eq!(back.len(), s.len(), "{dt}");
            for i in 0..s.len() {
                assert_eq!(back.value_bytes(i), s.value_bytes(i), "{dt} sample {i}");
            }
        }
    }

    #[test]
    fn sliced_and_multi_part_channels() {
        let s = Series::strings(&["x", "yy", "zzz", "w"]).slice(1..3).unwrap();
        let a = series_array(&s).unwrap();
        let back = series_from_arrow(DataType::String, a.as_ref()).unwrap();
        assert_eq!((back.value_str(0), back.value_str(1)), (Some("yy"), Some("zzz")));
        let parts = [Series::from_vec(vec![1i32, 2]), Series::from_vec(vec![3i32])];
        let a = parts_array(DataType::I32, &parts).unwrap();
        assert_eq!(series_from_arrow(DataType::I32, a.as_ref()).unwrap().as_slice::<i32>().unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn batches_check_lengths_and_nulls_are_refused() {
        let a = series_array(&Series::from_vec(vec![1.0f64, 2.0])).unwrap();
        let b = series_array(&Series::from_vec(vec![1.0f64])).unwrap();
        let e = batch(vec![("a".into(), DataType::F64, a.clone()), ("b".into(), DataType::F64, b)]).unwrap_err();
        assert!(e.to_string().contains("different lengths"), "{e}");
        let ok = batch(vec![("a".into(), DataType::F64, a)]).unwrap();
        assert_eq!(ok.num_rows(), 2);
        let nulls = arrow_array::Float64Array::from(vec![Some(1.0), None]);
        assert!(series_from_arrow(DataType::F64, &nulls).unwrap_err().to_string().contains("nulls"));
    }
}
