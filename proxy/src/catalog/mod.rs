//! What the proxy knows about each database's schema: a snapshot of the
//! system catalogs, loaded over one control connection per database.
//!
//! The rest of the proxy asks the snapshot four kinds of question:
//!
//! * names: which relation a (possibly unqualified) name means for a session
//!   with a given `search_path` ([`Snapshot::resolve`]), and how volatile the
//!   functions of a name are ([`Snapshot::function_volatility`]; including
//!   what a call runs unnamed: an aggregate's support functions, argument
//!   defaults, the checks of domain-typed arguments);
//! * hidden calls: whether a query's text reaches a user operator, cast,
//!   domain CHECK or type I/O function that is not IMMUTABLE
//!   ([`Snapshot::hidden_call_risk`]);
//! * reads: every relation whose data a read depends on, and the functions
//!   views and row-security policies call on the way
//!   ([`Snapshot::read_closure`]);
//! * writes: every relation whose data a write may change, and those whose
//!   triggers or rules may change anything at all ([`Snapshot::write_closure`]).
//!
//! Correctness comes first: wherever the catalog cannot say for sure, the
//! answers err towards "more relations" or "don't know" (`None`, `unknown`),
//! never towards a smaller set. A failed load is an error, never a guess; the
//! proxy then bypasses caching for that database and invalidates everything on
//! its writes.
//!
//! Files: `config.rs` and `error.rs` the knobs and failures; `names.rs` the
//! input names; `snapshot.rs` the loaded data; `load.rs` the catalog
//! queries; `node_tree.rs` the references inside stored expressions (view
//! queries, rules, policies, defaults); `hidden_calls.rs` the functions a
//! query runs without naming them (aggregates' support functions, argument
//! defaults, operators, casts, domain checks); `resolve.rs` search_path resolution;
//! `closure.rs` read and write closures; `settings.rs` per-role defaults
//! (search_path, isolation); `connection.rs` one database's control
//! connection and refresh; `registry.rs` the map of databases.
//!
//! Not modelled here, left to the proxy: a session's own temporary schema
//! (searched first, before pg_catalog; sessions with temporary objects are
//! not cached), reads of sequences (changed by every nextval() in a column
//! default: never cache a [`RelKind::Sequence`]), and REFRESH MATERIALIZED
//! VIEW (a write of the materialized view itself).

mod closure;
mod config;
mod connection;
mod error;
mod hidden_calls;
mod load;
mod names;
mod node_tree;
mod registry;
mod resolve;
mod settings;
mod snapshot;

#[cfg(test)]
mod tests;

pub use closure::{ReadClosure, WriteClosure};
pub use config::{CatalogConfig, CatalogTls};
pub use connection::{DbCatalog, Released};
pub use error::CatalogError;
pub use names::{FuncName, RelName};
pub use registry::{Catalogs, DdlCommit, FirstUse, MAX_OPERATOR_RELEASE};
pub use settings::{isolation_is_read_committed, parse_search_path};
pub use snapshot::{FunctionInfo, Oid, RelKind, Relation, Snapshot, Volatility};
