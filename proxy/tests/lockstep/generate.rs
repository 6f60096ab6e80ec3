//! The random program: which session acts next and what it sends. Every
//! action is deterministic (no now(), no random(), ORDER BY wherever several
//! rows come back), so the two databases evolve identically.

use super::action::{text, Action, Func, Msg};
use super::rng::Rng;
use super::universe::LOGINS;

/// Cacheable reads; the first `HOT` are drawn two times in three, so they
/// repeat between writes and the cache serves hits.
const HOT: usize = 3;
const READS: &[&str] = &[
    "SELECT secret FROM data",
    "SELECT v FROM t WHERE id = 1",
    "SELECT sum(v) FROM t",
    "SELECT total FROM totals",
    "SELECT id, v FROM t ORDER BY id",
    "SELECT id, v FROM t_view ORDER BY id",
    "SELECT secret FROM alice_only",
    "SELECT count(*), coalesce(sum(v), 0) FROM events",
    "SELECT secret FROM a.data",
    "SELECT current_user, current_setting('search_path')",
];

/// Reads that call a function reading `rates` without naming it (an
/// operator, an aggregate's final function, a domain check, a cast) or a
/// volatile default argument.
const HIDDEN_FUNCTIONS: &[&str] = &[
    "SELECT 3 ## 4",
    "SELECT scaled_sum(v) FROM t",
    "SELECT 150::limited",
    "SELECT (5::scaled_int).v",
    "SELECT ticket()",
];

const SESSION_STATE: &[&str] = &[
    "SET search_path = a, public",
    "SET search_path = b, public",
    "RESET search_path",
    "SET ROLE alice",
    "SET ROLE bob",
    "SET ROLE app",
    "RESET ROLE",
    "RESET ALL",
    "SET LOCAL search_path = b, public",
    "SET transaction_isolation = 'repeatable read'",
];

/// State changed by code running on the server, invisible in the text.
const SERVER_SIDE: &[&str] = &[
    "SELECT set_tenant('a')",
    "SELECT set_tenant('b')",
    "SELECT set_config('search_path', 'b, public', false)",
    "DO $$ BEGIN SET search_path = a, public; END $$",
    "CALL use_schema('b')",
    "SELECT make_private()",
    "CREATE TEMP TABLE IF NOT EXISTS data (secret text); \
     INSERT INTO pg_temp.data VALUES ('mine')",
];

const TRANSACTIONS: &[&str] = &[
    "BEGIN",
    "BEGIN",
    "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "COMMIT",
    "COMMIT",
    "COMMIT",
    "ROLLBACK",
    "ROLLBACK",
    "COMMIT AND CHAIN",
    "COMMIT; BEGIN",
    "END",
];

/// Bodies for prepared statements, SQL-level or protocol-level; the first
/// fails, so a name is often reused after a failure.
const PREPARED: &[&str] = &[
    "SELECT no_such_column FROM t",
    "UPDATE t SET v = v + 1 WHERE id = 2 RETURNING v",
    "SELECT v FROM t WHERE id = 2",
    "SELECT secret FROM data",
    "SELECT set_config('search_path', 'a, public', false)",
];

/// Migrations as tools run them: BEGIN, DDL, COMMIT as separate queries.
const MIGRATIONS: &[&str] = &[
    "CREATE OR REPLACE VIEW t_view AS SELECT id, v FROM t WHERE v > 20",
    "CREATE OR REPLACE VIEW t_view AS SELECT id, total AS v FROM totals",
    "CREATE OR REPLACE TRIGGER t_totals AFTER INSERT OR UPDATE OR DELETE ON t \
     FOR EACH STATEMENT EXECUTE FUNCTION totals_refresh()",
    "DROP TRIGGER IF EXISTS t_totals ON t",
];

const FAILING: &[&str] = &[
    "SELECT no_such_column FROM t",
    "SELEC 1",
    "SELECT 1 / 0",
    "UPDATE t SET nope = 1",
    "SELECT v FROM t WHERE id = 1; SELECT no_such_column",
];

fn read(rng: &mut Rng) -> Action {
    let pool = if rng.below(3) < 2 {
        &READS[..HOT]
    } else {
        READS
    };
    Action::simple("read", *rng.pick(pool))
}

/// Writes favour the rows and tables the hot reads read.
fn write(rng: &mut Rng) -> Action {
    let id = if rng.below(2) == 0 {
        1
    } else {
        rng.between(1, 5)
    };
    let n = rng.between(0, 99);
    let sql = match rng.below(7) {
        0 | 1 => format!("UPDATE t SET v = {n} WHERE id = {id}"),
        2 => format!("UPDATE t SET v = v + 1 WHERE id = {id}"),
        3 => format!("INSERT INTO events VALUES ({id}, {n})"),
        4 => format!("DELETE FROM events WHERE k = {id}"),
        5 => format!("UPDATE rates SET factor = {} WHERE k = 1", n % 4 + 1),
        _ => format!("UPDATE data SET secret = 'secret-{n}'"),
    };
    Action::simple("write", sql)
}

fn pipeline(rng: &mut Rng) -> Action {
    let rows = (0..rng.between(1, 3))
        .map(|_| vec![text(rng.between(1, 5)), text(rng.between(0, 99))])
        .collect();
    Action::pipeline("pipeline", "INSERT INTO events VALUES ($1, $2)", rows)
}

fn sql_prepared(rng: &mut Rng) -> Action {
    let name = rng.pick(&["p1", "p2"]);
    let sql = match rng.below(4) {
        0 | 1 => format!("PREPARE {name} AS {}", *rng.pick(PREPARED)),
        2 => format!("EXECUTE {name}"),
        _ => rng.pick(&["DEALLOCATE p1", "DEALLOCATE ALL"]).to_string(),
    };
    Action::simple("sql-prepared", sql)
}

fn protocol_prepared(rng: &mut Rng) -> Action {
    let name = *rng.pick(&["s1", "s2"]);
    let body = *rng.pick(PREPARED);
    match rng.below(6) {
        0 => Action::prepare("parse-named", name, body),
        1 => Action::batch("batch-named", name, body, vec![]),
        2 => Action::reparse("reparse-named", name, body, vec![]),
        3 => Action::run_prepared("execute-named", name, vec![]),
        4 => Action::simple("sql-execute-named", format!("EXECUTE {name}")),
        _ => Action::simple(
            "prepared-statements",
            "SELECT name, statement FROM pg_prepared_statements ORDER BY name",
        ),
    }
}

fn function_call(rng: &mut Rng) -> Action {
    if rng.below(2) == 0 {
        let path = rng.pick(&["a, public", "b, public"]);
        Action::call(
            "function-call",
            Func::SetConfig,
            vec![text("search_path"), text(path), text("false")],
        )
    } else {
        Action::call(
            "function-call",
            Func::SetTenant,
            vec![text(rng.pick(&["a", "b"]))],
        )
    }
}

fn extended_read(rng: &mut Rng) -> Action {
    let id = rng.between(1, 3);
    Action::extended(
        "extended-read",
        "SELECT v FROM t WHERE id = $1",
        vec![text(id)],
    )
}

fn migration(rng: &mut Rng) -> Action {
    Action::script("migration", &["BEGIN", *rng.pick(MIGRATIONS), "COMMIT"])
}

/// A read and a write in one pipeline, a Sync after each, then a Flush.
fn mixed_pipeline(rng: &mut Rng) -> Action {
    let id = rng.between(1, 3);
    let n = rng.between(0, 99);
    let parse = |sql: &str| Msg::Parse {
        name: String::new(),
        sql: sql.into(),
    };
    let bind = |params| Msg::Bind {
        statement: String::new(),
        params,
    };
    Action::messages(
        "mixed-pipeline",
        vec![
            parse("SELECT v FROM t WHERE id = $1"),
            bind(vec![text(id)]),
            Msg::DescribePortal,
            Msg::Execute,
            Msg::Sync,
            parse("UPDATE t SET v = $1 WHERE id = $2"),
            bind(vec![text(n), text(id)]),
            Msg::Execute,
            Msg::Sync,
            Msg::Flush,
        ],
    )
}

type Family = fn(&mut Rng) -> Action;

/// (name, weight, family): reads dominate so entries are filled and served,
/// and sessions reconnect often enough that state the proxy stops sharing (a
/// private context after set_config or a temporary table) does not last.
const FAMILIES: &[(&str, usize, Family)] = &[
    ("read", 45, read),
    ("hidden-function", 5, |rng| {
        Action::simple("hidden-function", *rng.pick(HIDDEN_FUNCTIONS))
    }),
    ("extended-read", 10, extended_read),
    ("write", 7, write),
    ("pipeline", 2, pipeline),
    ("mixed-pipeline", 1, mixed_pipeline),
    ("session-state", 6, |rng| {
        Action::simple("session-state", *rng.pick(SESSION_STATE))
    }),
    ("server-side-state", 2, |rng| {
        Action::simple("server-side-state", *rng.pick(SERVER_SIDE))
    }),
    ("function-call", 1, function_call),
    ("sql-prepared", 3, sql_prepared),
    ("protocol-prepared", 3, protocol_prepared),
    ("transaction", 8, |rng| {
        Action::simple("transaction", *rng.pick(TRANSACTIONS))
    }),
    ("migration", 2, migration),
    ("failing", 3, |rng| {
        Action::simple("failing", *rng.pick(FAILING))
    }),
    ("reconnect", 3, |_| Action::reconnect()),
];

/// Programs that each stress one group of classes: in the full mix, the
/// actions that invalidate everything (DDL, DO, CALL, volatile calls) rarely
/// leave an entry alive long enough to be served wrongly. The seed picks the
/// profile, so a seed alone still replays a program.
const PROFILES: &[(&str, &[&str])] = &[
    ("all", &[]),
    (
        "pipelines",
        &[
            "read",
            "extended-read",
            "write",
            "pipeline",
            "mixed-pipeline",
            "reconnect",
        ],
    ),
    (
        "session-state",
        &[
            "read",
            "write",
            "session-state",
            "server-side-state",
            "function-call",
            "reconnect",
        ],
    ),
    (
        "prepared",
        &[
            "read",
            "extended-read",
            "write",
            "sql-prepared",
            "protocol-prepared",
            "reconnect",
        ],
    ),
    (
        "transactions",
        &[
            "read",
            "write",
            "transaction",
            "migration",
            "failing",
            "reconnect",
        ],
    ),
    (
        "hidden-functions",
        &["read", "write", "hidden-function", "reconnect"],
    ),
];

/// Which families a program draws from: those of the seed's profile, or
/// those named in PGCACHE_DIFF_FAMILIES (comma-separated), minus those in
/// PGCACHE_DIFF_SKIP. Narrowing the program helps tell which class of hole a
/// failure belongs to.
pub struct Generator {
    rng: Rng,
    families: Vec<(usize, Family)>,
    last_session: usize,
    /// The profile's name, or "env" when the environment chose.
    pub profile: &'static str,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let list = |name: &str| -> Option<Vec<String>> {
            std::env::var(name)
                .ok()
                .map(|v| v.split(',').map(|f| f.trim().to_string()).collect())
        };
        let (mut only, skip) = (list("PGCACHE_DIFF_FAMILIES"), list("PGCACHE_DIFF_SKIP"));
        let mut profile = "env";
        if only.is_none() && skip.is_none() {
            let (name, families) = PROFILES[(seed % PROFILES.len() as u64) as usize];
            profile = name;
            if !families.is_empty() {
                only = Some(families.iter().map(|f| f.to_string()).collect());
            }
        }
        let wanted = |name: &str| {
            only.as_ref().is_none_or(|o| o.iter().any(|f| f == name))
                && !skip.as_ref().is_some_and(|s| s.iter().any(|f| f == name))
        };
        let families: Vec<(usize, Family)> = FAMILIES
            .iter()
            .filter(|(name, _, _)| wanted(name))
            .map(|(_, weight, family)| (*weight, *family))
            .collect();
        assert!(
            !families.is_empty(),
            "PGCACHE_DIFF_FAMILIES/PGCACHE_DIFF_SKIP leave no family; the families are {:?}",
            FAMILIES.iter().map(|f| f.0).collect::<Vec<_>>()
        );
        Generator {
            rng: Rng::new(seed),
            families,
            last_session: 0,
            profile,
        }
    }

    /// The next (session, action) of the program. `status` is a session's
    /// transaction status ('I', 'T' or 'E') from its last ReadyForQuery:
    /// a failed transaction usually ends next, an open one often, so steps
    /// are not spent on statements the server only refuses. A session often
    /// acts twice in a row, which makes "change state, then read" likely.
    pub fn next(&mut self, status: impl Fn(usize) -> u8) -> (usize, Action) {
        let session = if self.rng.below(3) == 0 {
            self.last_session
        } else {
            self.rng.below(LOGINS.len())
        };
        self.last_session = session;
        let ending = match status(session) {
            b'E' => self.rng.below(3) < 2,
            b'T' => self.rng.below(6) == 0,
            _ => false,
        };
        if ending {
            let end = *self.rng.pick(&["COMMIT", "ROLLBACK"]);
            return (session, Action::simple("transaction", end));
        }
        let total: usize = self.families.iter().map(|(w, _)| w).sum();
        let mut roll = self.rng.below(total);
        for (weight, family) in &self.families {
            if roll < *weight {
                return (session, family(&mut self.rng));
            }
            roll -= weight;
        }
        unreachable!("the roll is below the total weight")
    }
}
