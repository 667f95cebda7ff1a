//! A row condition, `{column, op, value}`, shared by `filter` and `content_router`.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::DataType;
use serde::Deserialize;

/// `column op value`: `op` is one of `==`, `!=`, `<`, `<=`, `>`, `>=`; `value` a number
/// (numeric and timestamp columns), a string (string columns) or a boolean.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Predicate {
    column: String,
    op: Op,
    value: Value,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Value {
    Bool(bool),
    Num(f64),
    Str(String),
}

impl Op {
    fn test<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

impl Predicate {
    /// Which rows of `batch` match. A batch without the column matches no row (a batch of
    /// another signal type, or frames without that channel).
    pub(super) fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let Some(col) = batch.column_by_name(&self.column) else {
            return Ok(BooleanArray::from(vec![false; batch.num_rows()]));
        };
        let op = self.op;
        match (col.data_type(), &self.value) {
            (DataType::Boolean, Value::Bool(v)) => Ok(col.as_boolean().iter().map(|x| Some(x.is_some_and(|x| op.test(&x, v)))).collect()),
            (DataType::Boolean, _) => Err(self.mismatch(col.data_type())),
            (_, Value::Str(v)) => match strings(col.as_ref()) {
                Some(vals) => Ok(vals.into_iter().map(|x| Some(x.is_some_and(|x| op.test(x, v.as_str())))).collect()),
                None => Err(self.mismatch(col.data_type())),
            },
            (_, Value::Num(v)) => match numbers(col.as_ref()) {
                Some(vals) => Ok(vals.into_iter().map(|x| Some(x.is_some_and(|x| op.test(&x, v)))).collect()),
                None => Err(self.mismatch(col.data_type())),
            },
            (_, Value::Bool(_)) => Err(self.mismatch(col.data_type())),
        }
    }

    fn mismatch(&self, dt: &DataType) -> String {
        format!("column `{}` is {dt} but the condition compares it with {:?}", self.column, self.value)
    }
}

/// The values of a numeric, timestamp or boolean column as f64 (`None` for nulls), or
/// `None` for a column of another type.
pub(super) fn numbers(col: &dyn Array) -> Option<Vec<Option<f64>>> {
    macro_rules! num {
        ($t:ty) => {
            col.as_primitive::<$t>().iter().map(|x| x.map(|x| x as f64)).collect()
        };
    }
    Some(match col.data_type() {
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float32 => num!(Float32Type),
        DataType::Float64 => num!(Float64Type),
        DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, _) => num!(TimestampNanosecondType),
        DataType::Boolean => col.as_boolean().iter().map(|x| x.map(|b| if b { 1.0 } else { 0.0 })).collect(),
        _ => return None,
    })
}

/// The values of a string column, or `None` for a column of another type.
pub(super) fn strings(col: &dyn Array) -> Option<Vec<Option<&str>>> {
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().iter().collect()),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().iter().collect()),
        _ => None,
    }
}

/// The nanosecond timestamps of a timestamp column, or `None`.
pub(super) fn timestamps(col: &dyn Array) -> Option<&[i64]> {
    match col.data_type() {
        DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, _) => Some(col.as_primitive::<TimestampNanosecondType>().values()),
        _ => None,
    }
}
