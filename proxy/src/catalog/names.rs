//! Names as the SQL analyzer hands them over: identifiers already folded
//! (unquoted ones lower-cased, quoted ones kept as written). The catalog takes
//! the analyzer's own types.

pub use crate::sql::{FuncName, RelName};
