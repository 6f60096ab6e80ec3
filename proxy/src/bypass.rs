//! Why a request was not answered from the cache nor stored in it: one
//! variant per reason, with the label it carries in
//! `pgcache_bypass_total{reason}` and the admin API. The labels are a fixed
//! set (the metric's cardinality is bounded), and `dashboards/README.md`
//! lists exactly these (a test checks it).

macro_rules! reasons {
    ($( $(#[doc = $doc:literal])* $variant:ident = $label:literal, )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Bypass {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Bypass {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Bypass] = &[$(Bypass::$variant),*];

            /// The metric label.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Bypass::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    // ---- the shape of the request
    /// A write, DDL or any statement that is not a single read.
    NotSelect = "not_select",
    /// Several statements in one simple query.
    MultiStatement = "multi_statement",
    /// An extended-protocol batch of another shape than
    /// `[Parse] Bind [Describe] Execute Sync` on the unnamed portal.
    Batch = "batch",
    /// A batch forwarded before its Sync (the client waits for answers
    /// first), or a request that joined such a batch.
    SplitBatch = "split_batch",
    /// A batch over 1 MiB, forwarded as it comes.
    LargeBatch = "large_batch",
    /// A batch ended by Flush (pipelining).
    Flush = "flush",
    /// The function-call message.
    FunctionCall = "function_call",
    /// A query text that is not NUL-terminated UTF-8.
    Malformed = "malformed",
    /// A statement text over 64 KiB: not analysed.
    TooLarge = "too_large",
    /// A cycle the proxy sent on its own (counted in no metric).
    Internal = "internal",
    // ---- the syntax of the read
    /// FOR UPDATE / SHARE.
    LockingClause = "locking_clause",
    /// TABLESAMPLE.
    Tablesample = "tablesample",
    /// A literal like `'now'::timestamp`, evaluated at execution.
    TimeLiteral = "time_literal",
    /// DECLARE CURSOR.
    Cursor = "cursor",
    /// COPY ... TO.
    Copy = "copy",
    /// EXPLAIN.
    Explain = "explain",
    // ---- the session and its transaction
    /// The policy disables the cache.
    Disabled = "disabled",
    /// Another request of the session is in flight.
    Pipelined = "pipelined",
    /// The session has not finished logging in.
    Startup = "startup",
    /// The transaction block wrote: its reads see its own writes.
    TransactionWrote = "transaction_wrote",
    /// The transaction block failed.
    FailedTransaction = "failed_transaction",
    /// The transaction block runs above READ COMMITTED.
    Isolation = "isolation",
    /// The server was not asked (or could not answer) what the session's
    /// state is since something may have changed it.
    StateUnknown = "state_unknown",
    /// The session has a temporary schema: names may resolve to its
    /// objects, which the catalog cannot see.
    TemporaryObjects = "temporary_objects",
    /// The startup packet is not UTF-8.
    StartupNotUtf8 = "startup_not_utf8",
    /// A replication connection.
    Replication = "replication",
    /// A protocol extension (`_pq_.` startup parameter).
    ProtocolExtension = "protocol_extension",
    /// `standard_conforming_strings` is off.
    StandardConformingStrings = "standard_conforming_strings",
    /// An answer came that no request asked for: the session is not
    /// cached any more.
    ProtocolDesync = "protocol_desync",
    /// The database's change feed is not streaming (`--change-feed
    /// required`, or `auto` once the database's feed has streamed): commits
    /// made around the proxy could be missed.
    FeedDown = "feed_down",
    /// The database's change feed is more than the policy's `max_lag`
    /// behind the server.
    FeedLagging = "feed_lagging",
    // ---- what the read reads and runs
    /// A function that is not IMMUTABLE (and not declared cacheable).
    VolatileFunction = "volatile_function",
    /// A function the catalog does not know.
    UnknownFunction = "unknown_function",
    /// A user operator whose function is not IMMUTABLE.
    VolatileOperator = "volatile_operator",
    /// A cast whose function is not IMMUTABLE.
    VolatileCast = "volatile_cast",
    /// A domain whose check is not IMMUTABLE.
    VolatileDomainCheck = "volatile_domain_check",
    /// A user type whose input or output is VOLATILE.
    VolatileTypeIo = "volatile_type_io",
    /// A temporary relation.
    TemporaryRelation = "temporary_relation",
    /// A system catalog.
    SystemCatalog = "system_catalog",
    /// A foreign table.
    ForeignTable = "foreign_table",
    /// A table with row-level security.
    RowSecurity = "row_security",
    /// A sequence.
    Sequence = "sequence",
    /// A name the catalog does not resolve.
    UnresolvedRelation = "unresolved_relation",
    /// Another kind of relation.
    UnsupportedRelation = "unsupported_relation",
    /// The database's catalog could not be loaded.
    CatalogUnavailable = "catalog_unavailable",
    /// A policy rule says `cache = false`.
    Policy = "policy",
}

/// How a cycle counts in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Looked up, not found, forwarded (and captured for the cache).
    Miss,
    /// Not cacheable; the reason is a short stable label.
    Bypass(Bypass),
}

impl std::fmt::Display for Bypass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in Bypass::ALL {
            let label = reason.as_str();
            assert!(seen.insert(label), "{label} twice");
            assert!(label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}
