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
        macro_rules! num {
            ($t:ty) => {{
                let Value::Num(v) = self.value else { return Err(self.mismatch(col.data_type())) };
                Ok(col.as_primitive::<$t>().iter().map(|x| Some(x.is_some_and(|x| op.test(&(x as f64), &v)))).collect())
            }};
        }
        match col.data_type() {
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
            DataType::Utf8 | DataType::LargeUtf8 => {
                let Value::Str(v) = &self.value else { return Err(self.mismatch(col.data_type())) };
                let test = |x: Option<&str>| Some(x.is_some_and(|x| op.test(x, v.as_str())));
                Ok(match col.data_type() {
                    DataType::Utf8 => col.as_string::<i32>().iter().map(test).collect(),
                    _ => col.as_string::<i64>().iter().map(test).collect(),
                })
            }
            DataType::Boolean => {
                let Value::Bool(v) = self.value else { return Err(self.mismatch(col.data_type())) };
                Ok(col.as_boolean().iter().map(|x| Some(x.is_some_and(|x| op.test(&x, &v)))).collect())
            }
            other => Err(format!("column `{}` is {other}, which conditions cannot compare", self.column)),
        }
    }

    fn mismatch(&self, dt: &DataType) -> String {
        format!("column `{}` is {dt} but the condition compares it with {:?}", self.column, self.value)
    }
}
