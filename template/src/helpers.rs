//! Small helpers shared by the function implementations (`builtins`, `sprig`): the common
//! errors and the size check made before a function builds a string.
//!
//! A leaf next to [`crate::value`]: the function modules import these instead of each other or
//! the function table, so the table can import them without a circle.

use crate::limits::MAX_STRING;
use crate::value::{SecretBytes, Value};

/// The error of a call with the wrong number of arguments.
pub(crate) fn bad_args() -> String {
    "wrong number of arguments".to_string()
}

/// A function's string result.
pub(crate) fn ok_str(bytes: impl Into<SecretBytes>) -> Result<Value, String> {
    Ok(Value::str(bytes))
}

/// Refuses to build strings over the size limit before allocating them.
pub(crate) fn check_size(size: Option<usize>) -> Result<usize, String> {
    match size {
        Some(size) if size <= MAX_STRING => Ok(size),
        _ => Err(too_large()),
    }
}

/// The error of a function whose result would be larger than one value may be.
pub(crate) fn too_large() -> String {
    format!("result would be larger than {MAX_STRING} bytes")
}
