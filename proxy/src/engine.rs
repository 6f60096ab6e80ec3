//! The caching parts every session shares: the store and its generations, the
//! coalescer, the SQL analyzer, the catalogs, and the live policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus::IntCounterVec;

use cache_core::{Coalescer, Generations, RelationId, Stats, Store, StoreConfig};
use policies::{Policy, SharedPolicy};

use crate::catalog::{CatalogConfig, Catalogs, Oid};
use crate::config::ProxyConfig;
use crate::sql::Analyzer;

/// What a statement may have changed, to be invalidated once the server has
/// acknowledged it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteSet {
    #[default]
    Nothing,
    Relations(Vec<RelationId>),
    /// Anything at all: a DDL, a DO block, a trigger or function the proxy cannot see into.
    Everything,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        matches!(self, WriteSet::Nothing)
    }

    pub fn add(&mut self, other: &WriteSet) {
        match (&mut *self, other) {
            (WriteSet::Everything, _) | (_, WriteSet::Nothing) => {}
            (_, WriteSet::Everything) => *self = WriteSet::Everything,
            (WriteSet::Nothing, WriteSet::Relations(r)) => *self = WriteSet::Relations(r.clone()),
            (WriteSet::Relations(mine), WriteSet::Relations(r)) => {
                for id in r {
                    if !mine.contains(id) {
                        mine.push(*id);
                    }
                }
            }
        }
    }
}

/// Where an invalidation comes from: the `source` label of
/// `pgcache_invalidations_total`, so an operator sees whether the cache is
/// emptied by the proxy's own traffic, by writes made around it, or by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A write relayed by this proxy (a statement, or the COMMIT of its block).
    Write,
    /// DDL relayed by this proxy, or a write planned before a DDL commit.
    Ddl,
    /// A commit decoded from the change feed.
    Feed,
    /// A change feed stream started or was lost: what committed while no
    /// stream listened is unknown.
    FeedRestart,
    /// The admin API or console.
    Operator,
    /// A policy reload.
    Policy,
    /// The upstream went away.
    UpstreamLost,
    /// A session whose answers no longer match its requests.
    Desync,
}

impl Source {
    pub const ALL: [Source; 8] = [
        Source::Write,
        Source::Ddl,
        Source::Feed,
        Source::FeedRestart,
        Source::Operator,
        Source::Policy,
        Source::UpstreamLost,
        Source::Desync,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Source::Write => "write",
            Source::Ddl => "ddl",
            Source::Feed => "feed",
            Source::FeedRestart => "feed_restart",
            Source::Operator => "operator",
            Source::Policy => "policy",
            Source::UpstreamLost => "upstream_lost",
            Source::Desync => "desync",
        }
    }
}

/// How long a follower waits for the leader's result before it goes upstream itself.
pub const COALESCE_WAIT: Duration = Duration::from_secs(5);
/// Analyses kept (distinct statement shapes).
const ANALYSIS_CACHE: usize = 10_000;
/// Shards of the store; the per-entry cap is also bounded by max_memory / SHARDS.
const SHARDS: usize = 16;

/// Relation ids seen by the planner, with their qualified names: labels for the
/// per-table invalidation metric and the admin API. Bounded, so the metric's
/// cardinality is too.
#[derive(Default)]
pub struct TableNames {
    names: RwLock<HashMap<RelationId, Arc<str>>>,
}

/// Tables beyond this many are counted under the label "other".
const MAX_TABLE_LABELS: usize = 1000;

impl TableNames {
    pub fn note(&self, id: RelationId, schema: &str, name: &str) {
        if self.names.read().contains_key(&id) {
            return;
        }
        let mut names = self.names.write();
        if names.len() < MAX_TABLE_LABELS {
            names
                .entry(id)
                .or_insert_with(|| Arc::from(format!("{schema}.{name}")));
        }
    }

    pub fn label(&self, id: RelationId) -> Arc<str> {
        self.names
            .read()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::from("other"))
    }

    /// Every id known under `qualified` ("schema.name"), in any database.
    pub fn find(&self, qualified: &str) -> Vec<RelationId> {
        self.names
            .read()
            .iter()
            .filter(|(_, n)| &***n == qualified)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn all(&self) -> Vec<(RelationId, Arc<str>)> {
        self.names
            .read()
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }
}

pub struct Engine {
    pub tables: TableNames,
    invalidations: IntCounterVec,
    pub store: Store,
    pub generations: Generations,
    pub coalescer: Coalescer,
    pub stats: Arc<Stats>,
    pub analyzer: Analyzer,
    pub catalogs: Catalogs,
    pub policy: SharedPolicy,
    /// Which databases may be served while `--change-feed required`.
    pub feed_gate: crate::feed::gate::FeedGate,
    /// Each followed database's slot and last error, for the admin API.
    pub feed_board: crate::feed::board::FeedBoard,
}

impl Engine {
    pub fn new(
        config: &ProxyConfig,
        policy: SharedPolicy,
        invalidations: IntCounterVec,
        upstream_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> Engine {
        let stats = Arc::new(Stats::new());
        let current = policy.load();
        let store = Store::with_stats(
            StoreConfig {
                max_bytes: current.max_memory(),
                max_entry_bytes: current.max_entry_size(),
                shards: SHARDS,
            },
            stats.clone(),
        );
        let upstream = &config.upstream;
        Engine {
            tables: TableNames::default(),
            invalidations,
            store,
            generations: Generations::with_stats(stats.clone()),
            coalescer: Coalescer::with_stats(stats.clone()),
            analyzer: Analyzer::new(ANALYSIS_CACHE),
            catalogs: Catalogs::new({
                let mut c = CatalogConfig::new(
                    upstream.host.clone(),
                    upstream.port,
                    upstream.user.clone(),
                    upstream.password.clone(),
                );
                c.connect_timeout = config.connect_timeout;
                c.idle_close = config.catalog_idle_close;
                c.tls = upstream_tls.map(|config| crate::catalog::CatalogTls {
                    config,
                    required: upstream.tls.mode != crate::config::SslMode::Prefer,
                });
                c
            }),
            policy,
            stats,
            feed_gate: crate::feed::gate::FeedGate::new(config.change_feed),
            feed_board: crate::feed::board::FeedBoard::default(),
        }
    }

    /// Relation ids are unique across databases: the catalog's index and the OID.
    pub fn relation_id(db_index: u32, oid: Oid) -> RelationId {
        (u64::from(db_index) << 32) | u64::from(oid)
    }

    /// The pseudo-relation every entry read from database `db_index` records
    /// (OID 0 is no relation's): bumping it drops that database's entries
    /// and no other's.
    pub fn database_id(db_index: u32) -> RelationId {
        Engine::relation_id(db_index, 0)
    }

    /// The one entry point of invalidation, whatever its source. Writes are
    /// invalidated after the server acknowledged them and before the
    /// acknowledgement is relayed.
    pub fn invalidate(&self, writes: &WriteSet, source: Source) {
        let source = source.label();
        match writes {
            WriteSet::Nothing => {}
            WriteSet::Relations(ids) => {
                self.generations.bump(ids);
                for &id in ids {
                    let table = if id & 0xFFFF_FFFF == 0 {
                        Arc::from("(database)")
                    } else {
                        self.tables.label(id)
                    };
                    self.invalidations
                        .with_label_values(&[&*table, source])
                        .inc();
                }
            }
            WriteSet::Everything => {
                self.generations.bump_all();
                self.invalidations
                    .with_label_values(&["(all)", source])
                    .inc();
            }
        }
    }

    /// Every entry read from database `db_index`, and only those.
    pub fn invalidate_database(&self, db_index: u32, source: Source) {
        self.invalidate(
            &WriteSet::Relations(vec![Engine::database_id(db_index)]),
            source,
        );
    }

    /// The upstream went away (restart, crash, network): writes may have been
    /// missed or lost in recovery, so nothing cached before is trusted.
    pub fn upstream_lost(&self) {
        self.invalidate(&WriteSet::Everything, Source::UpstreamLost);
        self.store.clear();
    }

    /// Applies a newly loaded policy: budgets change, and every entry goes,
    /// since rules that allowed it may not allow it any more.
    pub fn apply_policy(&self, policy: &Policy) {
        self.store.set_max_bytes(policy.max_memory());
        self.store.set_max_entry_bytes(policy.max_entry_size());
        self.invalidate(&WriteSet::Everything, Source::Policy);
        self.store.clear();
    }
}
