//! Names as the SQL analyzer hands them over: identifiers already folded
//! (unquoted ones lower-cased, quoted ones kept as written). The catalog takes
//! the analyzer's own types, and keeps of each what PostgreSQL keeps.

pub use crate::sql::{FuncName, RelName};

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; a longer name
/// in a query or a search_path means its first 63 bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// `name` cut to what PostgreSQL keeps of an identifier (on a character
/// boundary, as pg_mbcliplen does).
pub(super) fn truncate_identifier(name: &str) -> &str {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name;
    }
    let mut end = MAX_IDENTIFIER_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}
