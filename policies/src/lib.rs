//! The pgcache policy file: what may be cached, for how long, and what
//! invalidates what.
//!
//! Operators edit this TOML file by hand, on live systems; the proxy reloads
//! it without a restart. This crate reads it into a validated, immutable
//! [`Policy`], reports every problem with `file:line:column: key: message`
//! ([`PolicyErrors`]), answers lookups ([`Policy::table`], [`Policy::query`],
//! [`Policy::function`], [`Policy::resolve`]) and holds the live policy
//! ([`SharedPolicy`]). It knows nothing of SQL parsing, sockets or the cache
//! engine.
//!
//! # The file format
//!
//! Every key is optional; an empty file means [`Policy::default`]. Unknown
//! keys and values of the wrong type are errors, so a typo never silently
//! turns a rule off. A commented example is `examples/policies/full.toml`.
//!
//! ```toml
//! [cache]
//! enabled = true               # master switch; false forwards everything uncached
//! max_memory = "256MiB"        # byte budget of the store (> 0)
//! max_lag = "250ms"            # change feed: serve a database only this close behind the server
//!
//! [defaults]                   # for every table no rule names
//! cache = true                 # false: cache only tables that a rule allows
//! ttl = "60s"                  # every entry expires after this, even if no write is seen (> 0)
//! max_entry_size = "1MiB"      # larger results pass through uncached (> 0)
//!
//! [tables."public.orders"]     # one table
//! ttl = "5s"
//! max_entry_size = "4MiB"
//! trigger_writes = ["public.order_totals"]   # what this table's triggers write
//!
//! [tables."public.audit_log"]
//! cache = false
//!
//! [tables."analytics.*"]       # every table of a schema
//! ttl = "10m"
//!
//! [queries."select * from users where id = $1"]   # one query shape, by fingerprint
//! ttl = "1s"                   # `cache = true|false` also allowed
//!
//! [functions."public.bump_counter"]   # a user function the proxy may see called
//! writes = ["public.counters"]
//!
//! [functions."public.slugify"]
//! cacheable = true
//! ```
//!
//! ## `[cache]`
//! - `enabled` (bool, default `true`): master switch. `false` keeps the proxy
//!   forwarding but caches nothing.
//! - `max_memory` (size, default `"256MiB"`): the store's byte budget; must be
//!   more than zero (turn caching off with `enabled = false`).
//! - `max_lag` (duration, default `"250ms"`): with the change feed on
//!   (`--change-feed auto|required`), a database is served from the cache
//!   only while its feed is at most this far behind the server; beyond, its
//!   requests pass through (`bypass{reason="feed_lagging"}`). More than zero,
//!   at most `"1h"`. Without a feed it does nothing.
//!
//! ## `[defaults]`
//! - `cache` (bool, default `true`): whether tables that no rule names are
//!   cached. With `false`, only tables whose rule says `cache = true` are.
//! - `ttl` (duration, default `"60s"`): the longest any entry lives. It bounds
//!   staleness from writes the proxy cannot see (other clients, cron jobs).
//!   Must be more than zero (use `cache = false` instead) and at most `"87600h"`.
//! - `max_entry_size` (size, default `"1MiB"`): results larger than this pass
//!   through uncached. More than zero.
//!
//! ## `[tables."NAME"]`
//! NAME is `schema.table` as in SQL: an unqualified name means `public`;
//! unquoted parts are lower-cased, double-quoted parts keep their case
//! (`[tables.'"Sales"."Orders"']`, TOML single quotes around SQL double
//! quotes); `"schema.*"` matches every table of a schema. Note the TOML quotes
//! around the name: `[tables.public.orders]` would be a nested table.
//! - `cache` (bool), `ttl` (duration), `max_entry_size` (size): as in
//!   `[defaults]`, for this table. A query reading several tables gets the
//!   shortest ttl and the smallest size of them, and is not cached if any of
//!   them says `cache = false`.
//! - `trigger_writes` (array of table names): the tables this table's
//!   triggers write. Without it, a write to a table with user triggers
//!   invalidates every cached entry; with it, only the written table and
//!   these. `[]` declares that the triggers write no other table.
//!
//! Each key is resolved on its own, most specific first: the exact rule, then
//! the schema's `"schema.*"` rule, then `[defaults]`.
//!
//! ## `[queries."FINGERPRINT"]`
//! FINGERPRINT is a query shape (literals replaced by `$n`) as shown by the
//! proxy's admin listing: copy it from there. It is compared after trimming,
//! collapsing whitespace, dropping trailing semicolons and lower-casing
//! outside quotes ([`canonical_fingerprint`]).
//! - `cache` (bool): overrides the tables' rules and `[defaults] cache` for
//!   this shape (not `[cache] enabled`, nor the proxy's safety checks).
//! - `ttl` (duration): replaces the ttl the tables would give.
//!
//! ## `[functions."NAME"]`
//! NAME as for tables (no wildcard); the rule covers every overload.
//! - `writes` (array of table names): the tables a user VOLATILE function
//!   writes. Without a declaration, a call invalidates everything. `[]`
//!   declares that it writes nothing.
//! - `cacheable` (bool, default `false`): let a SELECT calling this STABLE or
//!   VOLATILE function be cached as if it were IMMUTABLE. The operator vouches
//!   that, for the same arguments, it returns the same result for at least
//!   the ttl and has no side effects; if not, clients get stale or wrong
//!   results. Cannot be combined with a non-empty `writes`.
//!
//! A declaration must say something: `writes`, or `cacheable = true`.
//!
//! ## Values
//! - Durations: a whole number and a unit: `"500ms"`, `"5s"`, `"2m"`, `"1h"`.
//! - Sizes: a whole number with an optional unit: `"512"`/`"512B"` bytes;
//!   `"64KiB"`, `"1MiB"`, `"1GiB"`, `"1TiB"` powers of 1024; `"1kB"`, `"1MB"`,
//!   `"1GB"`, `"1TB"` powers of 1000 (unlike postgresql.conf, where MB means
//!   MiB). A bare TOML integer is a number of bytes.

mod error;
mod fingerprint;
mod model;
mod names;
mod raw;
mod resolve;
mod shared;
mod units;
mod validate;

pub use error::{PolicyError, PolicyErrors};
pub use fingerprint::canonical_fingerprint;
pub use model::{
    FunctionRule, Policy, QueryRule, TableRuleSpec, DEFAULT_MAX_ENTRY_SIZE, DEFAULT_MAX_LAG,
    DEFAULT_MAX_MEMORY, DEFAULT_TTL, MAX_MAX_LAG, MAX_TTL,
};
pub use names::{NameError, QualifiedName};
pub use resolve::{DecidedBy, Resolution, RuleSource, TableRule};
pub use shared::SharedPolicy;
pub use units::{format_duration, format_size, parse_duration, parse_size, UnitError};

#[cfg(test)]
mod tests;
