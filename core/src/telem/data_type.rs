//! Sample data types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The type of every sample of a channel.
///
/// Fixed-size types store `density()` bytes per sample, little-endian. Variable-length types
/// (`String`, `Json`, `Bytes`) store a byte payload per sample plus an offsets array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum DataType {
    /// Unsigned 8-bit integer.
    U8 = 1,
    /// Unsigned 16-bit integer.
    U16 = 2,
    /// Unsigned 32-bit integer.
    U32 = 3,
    /// Unsigned 64-bit integer.
    U64 = 4,
    /// Signed 8-bit integer.
    I8 = 5,
    /// Signed 16-bit integer.
    I16 = 6,
    /// Signed 32-bit integer.
    I32 = 7,
    /// Signed 64-bit integer.
    I64 = 8,
    /// 32-bit IEEE float.
    F32 = 9,
    /// 64-bit IEEE float.
    F64 = 10,
    /// Boolean, one byte per sample holding 0 or 1.
    Bool = 11,
    /// Nanoseconds since the Unix epoch (UTC) as a signed 64-bit integer.
    Timestamp = 12,
    /// A 16-byte UUID.
    Uuid = 13,
    /// UTF-8 text, variable length.
    String = 14,
    /// A JSON document (UTF-8, validated on write), variable length.
    Json = 15,
    /// Opaque bytes, variable length.
    Bytes = 16,
}

impl DataType {
    /// Every data type, in tag order.
    pub const ALL: [DataType; 16] = [
        DataType::U8,
        DataType::U16,
        DataType::U32,
        DataType::U64,
        DataType::I8,
        DataType::I16,
        DataType::I32,
        DataType::I64,
        DataType::F32,
        DataType::F64,
        DataType::Bool,
        DataType::Timestamp,
        DataType::Uuid,
        DataType::String,
        DataType::Json,
        DataType::Bytes,
    ];

    /// Bytes per sample for fixed-size types, `None` for variable-length types.
    pub const fn density(self) -> Option<usize> {
        match self {
            DataType::U8 | DataType::I8 | DataType::Bool => Some(1),
            DataType::U16 | DataType::I16 => Some(2),
            DataType::U32 | DataType::I32 | DataType::F32 => Some(4),
            DataType::U64 | DataType::I64 | DataType::F64 | DataType::Timestamp => Some(8),
            DataType::Uuid => Some(16),
            DataType::String | DataType::Json | DataType::Bytes => None,
        }
    }

    /// True for `String`, `Json` and `Bytes`.
    pub const fn is_variable(self) -> bool {
        self.density().is_none()
    }

    /// The stable one-byte tag used on disk and on the wire.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The data type for an on-disk or wire tag.
    pub fn from_tag(tag: u8) -> Option<DataType> {
        DataType::ALL.iter().copied().find(|d| d.tag() == tag)
    }

    /// The canonical lower-case name (`"f64"`, `"timestamp"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DataType::U8 => "u8",
            DataType::U16 => "u16",
            DataType::U32 => "u32",
            DataType::U64 => "u64",
            DataType::I8 => "i8",
            DataType::I16 => "i16",
            DataType::I32 => "i32",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
            DataType::Bool => "bool",
            DataType::Timestamp => "timestamp",
            DataType::Uuid => "uuid",
            DataType::String => "string",
            DataType::Json => "json",
            DataType::Bytes => "bytes",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown data type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown data type {0:?}; expected one of u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool, timestamp, uuid, string, json, bytes"
)]
pub struct UnknownDataType(pub String);

impl FromStr for DataType {
    type Err = UnknownDataType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "uint8" => "u8",
            "uint16" => "u16",
            "uint32" => "u32",
            "uint64" => "u64",
            "int8" => "i8",
            "int16" => "i16",
            "int32" => "i32",
            "int64" => "i64",
            "float32" => "f32",
            "float64" => "f64",
            "boolean" => "bool",
            "str" => "string",
            other => other,
        };
        DataType::ALL.iter().copied().find(|d| d.name() == alias).ok_or_else(|| UnknownDataType(s.to_string()))
    }
}

/// A Rust type whose values are stored as samples of a fixed-size [`DataType`].
///
/// Implemented for the primitive numeric types; `i64` maps to [`DataType::I64`] and is also
/// accepted for [`DataType::Timestamp`] channels.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The natural data type of this Rust type.
    const DATA_TYPE: DataType;
}

macro_rules! impl_sample {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(impl Sample for $t { const DATA_TYPE: DataType = DataType::$d; })*
    };
}

impl_sample!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32,
    i64 => I64, f32 => F32, f64 => F64);

/// True if samples of Rust type `T` may be viewed as samples of `dt`.
pub(crate) fn compatible<T: Sample>(dt: DataType) -> bool {
    T::DATA_TYPE == dt
        || (T::DATA_TYPE == DataType::I64 && dt == DataType::Timestamp)
        || (T::DATA_TYPE == DataType::U8 && dt == DataType::Bool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_are_unique() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_tag(d.tag()), Some(d));
            assert_eq!(d.name().parse::<DataType>().unwrap(), d);
        }
        assert_eq!(DataType::from_tag(0), None);
        assert_eq!(DataType::from_tag(200), None);
    }

    #[test]
    fn parses_aliases_and_rejects_unknown() {
        assert_eq!("float64".parse::<DataType>().unwrap(), DataType::F64);
        assert_eq!(" Timestamp ".parse::<DataType>().unwrap(), DataType::Timestamp);
        assert!("float128".parse::<DataType>().is_err());
    }

    #[test]
    fn densities() {
        assert_eq!(DataType::F64.density(), Some(8));
        assert_eq!(DataType::Uuid.density(), Some(16));
        assert!(DataType::Json.is_variable());
        assert!(!DataType::Bool.is_variable());
    }
}
