//! The catalog queries, and building a [`Snapshot`] from their rows.
//!
//! Everything is read in one REPEATABLE READ, READ ONLY transaction, so the
//! pieces agree with each other (no view whose base table is missing). A
//! fresh database gives about 400 relations and 3,000 functions; the load
//! takes about 20 ms in a release build, half of it the stored expressions
//! (some 3 MB of query trees, mostly the system views').

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, IsolationLevel, Row, Transaction};

use super::error::describe;
use super::facts::{FunctionInfo, Oid, Volatility};
use super::hidden_calls::{self, Domain, HiddenCalls, HiddenFacts, Reach, UserCast, UserOperator};
use super::node_tree;
use super::settings::parse_setconfig;
use super::snapshot::{Deps, FkEdge, RelKind, Relation, RoleSetting, SchemaInfo, Snapshot};

/// The server-wide values of the two modelled settings, as this (control)
/// session sees them. `source` says whether they came from the server's
/// configuration or from `pg_db_role_setting` entries of the proxy's own
/// role and database, which would hide the server's value.
const SETTINGS: &str = "SELECT name, setting, source, boot_val FROM pg_catalog.pg_settings \
     WHERE name IN ('search_path', 'default_transaction_isolation')";

/// The configuration files' values (superuser or pg_read_all_settings).
const FILE_SETTINGS: &str = "SELECT name, setting FROM pg_file_settings \
     WHERE name IN ('search_path', 'default_transaction_isolation') AND applied AND error IS NULL \
     ORDER BY seqno";

/// Whether PUBLIC may use a schema decides whether every role searches it.
const NAMESPACES: &str = "SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner), \
     has_schema_privilege('public', n.oid, 'USAGE') FROM pg_namespace n";

const SUPERUSERS: &str = "SELECT rolname FROM pg_roles WHERE rolsuper";

/// Every relkind: an index or composite type shadows a table of the same
/// name later in the search_path, as in PostgreSQL.
const RELATIONS: &str = "SELECT c.oid, c.relnamespace, c.relname, c.relkind, c.relpersistence, \
     c.relrowsecurity FROM pg_class c";

const INHERITS: &str = "SELECT inhrelid, inhparent FROM pg_inherits";

/// Stored expressions, by the relation they belong to; `kind`: `v` a
/// view's (or materialized view's) `_RETURN` query, `r` another rule
/// (its condition and actions), `p` a row-security policy, `c` a column
/// default, generated column or CHECK constraint. Their references are read
/// by `node_tree` (pg_depend omits built-in objects).
const EXPRESSIONS: &str = "\
SELECT CASE WHEN rulename = '_RETURN' THEN 'v' ELSE 'r' END, ev_class,
       concat(ev_qual::text, ' ', ev_action::text)
FROM pg_rewrite
UNION ALL
SELECT 'p', polrelid, concat(polqual::text, ' ', polwithcheck::text) FROM pg_policy
UNION ALL
SELECT 'c', adrelid, adbin::text FROM pg_attrdef
UNION ALL
SELECT 'c', conrelid, conbin::text FROM pg_constraint WHERE contype = 'c' AND conrelid <> 0";

/// Operators run their implementing function.
const OPERATORS: &str = "SELECT oid, oprcode::oid FROM pg_operator";

/// Aggregates' support functions, and the function of the sort operator of
/// MIN/MAX-like ones (0 where there is none). Built-in ones too: pg_proc
/// marks `jsonb_object_agg` IMMUTABLE over STABLE support functions.
const AGGREGATES: &str = "SELECT aggfnoid::oid, ARRAY[aggtransfn::oid, aggfinalfn::oid, \
     aggcombinefn::oid, aggserialfn::oid, aggdeserialfn::oid, aggmtransfn::oid, \
     aggminvtransfn::oid, aggmfinalfn::oid, \
     (SELECT oprcode::oid FROM pg_operator WHERE oid = aggsortop)] \
     FROM pg_aggregate";

/// Argument defaults run when a call leaves the argument out.
const ARGUMENT_DEFAULTS: &str =
    "SELECT oid, proargdefaults::text FROM pg_proc WHERE proargdefaults IS NOT NULL";

/// Every domain with each of its CHECKs (one row per CHECK, or one row with
/// NULL when it has none): a domain over a checked domain checks both.
const DOMAINS: &str = "SELECT t.oid, t.typname, t.typbasetype, c.conbin::text FROM pg_type t \
     LEFT JOIN pg_constraint c ON c.contypid = t.oid AND c.contype = 'c' \
     WHERE t.typtype = 'd'";

/// Functions taking or returning one of the domains `$1` (or an array of
/// one; OUT parameters too): a call coerces to it, running its checks.
/// Asked only about domains whose checks are not IMMUTABLE, since it scans
/// every function.
const DOMAIN_SIGNATURES: &str = "SELECT p.oid, array_agg(DISTINCT d.domain) FROM pg_proc p \
     JOIN (SELECT oid AS typ, oid AS domain FROM pg_type WHERE oid = ANY ($1) \
           UNION ALL SELECT oid, typelem FROM pg_type \
           WHERE typelem = ANY ($1) AND typcategory = 'A') d \
       ON d.typ = p.prorettype OR d.typ = ANY (p.proargtypes) \
          OR d.typ = ANY (p.proallargtypes) \
     GROUP BY p.oid";

/// Composite types (not tables' row types) with a field of one of the
/// domains `$1` or an array of one: `ROW(..)::type` checks the field.
const COMPOSITES_OF_DOMAINS: &str = "SELECT DISTINCT t.typname FROM pg_attribute a \
     JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = c.reltype \
     LEFT JOIN pg_type f ON f.oid = a.atttypid \
     WHERE c.relkind = 'c' AND a.attnum > 0 AND NOT a.attisdropped \
       AND (a.atttypid = ANY ($1) OR (f.typcategory = 'A' AND f.typelem = ANY ($1)))";

/// With each user operator, whether a btree or hash operator family holds
/// it (other access methods run an operator only where the query names it).
const USER_OPERATORS: &str = "SELECT o.oid, o.oprname, o.oprcode::oid, o.oprcom, o.oprnegate, \
     EXISTS (SELECT 1 FROM pg_amop a JOIN pg_am m ON m.oid = a.amopmethod \
             WHERE a.amopopr = o.oid AND m.amname IN ('btree', 'hash')) \
     FROM pg_operator o WHERE o.oid >= 16384";

/// User support functions of btree and hash operator families: sorting,
/// grouping and hashing call them with no operator in the text.
const SORT_HASH_SUPPORT: &str = "SELECT DISTINCT p.amproc::oid FROM pg_amproc p \
     JOIN pg_opfamily f ON f.oid = p.amprocfamily JOIN pg_am m ON m.oid = f.opfmethod \
     WHERE m.amname IN ('btree', 'hash') AND p.amproc::oid >= 16384";

const USER_CASTS: &str = "SELECT c.castfunc, c.castcontext, c.casttarget, t.typname \
     FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget \
     WHERE c.oid >= 16384 AND c.castmethod = 'f'";

/// User base types with I/O functions of their own (arrays, enums, ranges
/// and composites use built-in ones).
const USER_TYPE_IO: &str = "SELECT ARRAY[typinput::oid, typoutput::oid, typreceive::oid, \
     typsend::oid] FROM pg_type WHERE oid >= 16384 AND typtype = 'b' \
     AND GREATEST(typinput::oid, typoutput::oid, typreceive::oid, typsend::oid) >= 16384";

const FOREIGN_KEYS: &str =
    "SELECT conrelid, confrelid, confupdtype, confdeltype FROM pg_constraint \
     WHERE contype = 'f'";

/// Internal triggers are the FK machinery (handled by FOREIGN_KEYS);
/// triggers cloned onto partitions from a parent's are not internal.
const TRIGGERS: &str = "SELECT DISTINCT tgrelid FROM pg_trigger WHERE NOT tgisinternal";

const FUNCTIONS: &str = "SELECT p.oid, n.nspname, p.proname, p.provolatile FROM pg_proc p \
     JOIN pg_namespace n ON n.oid = p.pronamespace";

const ROLE_SETTINGS: &str = "SELECT s.setdatabase <> 0, s.setrole <> 0, r.rolname, s.setconfig \
     FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole \
     WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))";

/// `pg_settings.source` values that mean this session's value came from
/// `pg_db_role_setting` (or the client), hiding the server's own default.
const MASKING_SOURCES: &[&str] = &[
    "global",
    "database",
    "user",
    "database user",
    "client",
    "session",
];

/// `FirstNormalObjectId`: objects initdb creates have lower oids.
const FIRST_USER_OID: Oid = 16384;

const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

/// Loads a snapshot of the database `client` is connected to. Errors are
/// messages; the caller adds which database.
pub(super) async fn load(client: &mut Client) -> Result<Snapshot, String> {
    let started = Instant::now();
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| describe(&e))?;
    let (server_search_path, server_isolation) = server_defaults(&mut tx).await?;
    // Our own queries must see the real catalogs whatever search_path the
    // service role has been given.
    tx.batch_execute("SET LOCAL search_path = pg_catalog")
        .await
        .map_err(|e| describe(&e))?;

    let mut schema_names: HashMap<Oid, String> = HashMap::new();
    let mut schemas = HashMap::new();
    for row in query(&tx, NAMESPACES).await? {
        let name: String = col(&row, 1)?;
        schema_names.insert(col(&row, 0)?, name.clone());
        let info = SchemaInfo {
            owner: col(&row, 2)?,
            public_usage: col(&row, 3)?,
        };
        schemas.insert(name, info);
    }

    let mut superusers = HashSet::new();
    for row in query(&tx, SUPERUSERS).await? {
        superusers.insert(col::<String>(&row, 0)?);
    }

    let mut triggered = HashSet::new();
    for row in query(&tx, TRIGGERS).await? {
        triggered.insert(col::<Oid>(&row, 0)?);
    }

    let mut relations = HashMap::new();
    let mut by_name: HashMap<String, HashMap<String, Oid>> = HashMap::new();
    for row in query(&tx, RELATIONS).await? {
        let oid: Oid = col(&row, 0)?;
        let namespace: Oid = col(&row, 1)?;
        let Some(schema) = schema_names.get(&namespace) else {
            return Err(format!(
                "relation {oid} is in unknown namespace {namespace}"
            ));
        };
        let rel = Relation {
            oid,
            schema: schema.clone(),
            name: col(&row, 2)?,
            kind: RelKind::from_relkind(col::<i8>(&row, 3)? as u8),
            temporary: col::<i8>(&row, 4)? as u8 == b't',
            system: SYSTEM_SCHEMAS.contains(&schema.as_str()),
            row_security: col(&row, 5)?,
            has_user_triggers: triggered.contains(&oid),
            // Set below, from the rules' expressions.
            has_rules: false,
        };
        by_name
            .entry(rel.schema.clone())
            .or_default()
            .insert(rel.name.clone(), oid);
        relations.insert(oid, rel);
    }

    let mut parents: HashMap<Oid, Vec<Oid>> = HashMap::new();
    let mut children: HashMap<Oid, Vec<Oid>> = HashMap::new();
    for row in query(&tx, INHERITS).await? {
        let (child, parent): (Oid, Oid) = (col(&row, 0)?, col(&row, 1)?);
        parents.entry(child).or_default().push(parent);
        children.entry(parent).or_default().push(child);
    }

    let mut functions = HashMap::new();
    let mut functions_by_name: HashMap<String, Vec<Oid>> = HashMap::new();
    for row in query(&tx, FUNCTIONS).await? {
        let schema: String = col(&row, 1)?;
        let info = FunctionInfo {
            oid: col(&row, 0)?,
            volatility: Volatility::from_provolatile(col::<i8>(&row, 3)? as u8),
            is_system: schema == "pg_catalog" || schema == "information_schema",
            schema,
            name: col(&row, 2)?,
        };
        functions_by_name
            .entry(info.name.clone())
            .or_default()
            .push(info.oid);
        functions.insert(info.oid, info);
    }

    let mut operators: HashMap<Oid, Oid> = HashMap::new();
    for row in query(&tx, OPERATORS).await? {
        operators.insert(col(&row, 0)?, col(&row, 1)?);
    }

    let hidden_calls = hidden_calls(&tx, &operators, &mut functions).await?;

    let mut view_deps: HashMap<Oid, Deps> = HashMap::new();
    let mut rule_deps: HashMap<Oid, Deps> = HashMap::new();
    let mut policy_deps: HashMap<Oid, Deps> = HashMap::new();
    let mut column_deps: HashMap<Oid, Deps> = HashMap::new();
    for row in query(&tx, EXPRESSIONS).await? {
        let kind: String = col(&row, 0)?;
        let owner: Oid = col(&row, 1)?;
        let Some(tree) = col::<Option<String>>(&row, 2)? else {
            continue;
        };
        let map = match kind.as_str() {
            "v" => &mut view_deps,
            "r" => &mut rule_deps,
            "p" => &mut policy_deps,
            _ => &mut column_deps,
        };
        add_references(
            map.entry(owner).or_default(),
            owner,
            &tree,
            &relations,
            &operators,
            &hidden_calls,
        );
    }

    for owner in rule_deps.keys() {
        if let Some(rel) = relations.get_mut(owner) {
            rel.has_rules = true;
        }
    }

    let mut fk_children: HashMap<Oid, Vec<FkEdge>> = HashMap::new();
    for row in query(&tx, FOREIGN_KEYS).await? {
        let cascading = |action: i8| matches!(action as u8, b'c' | b'n' | b'd');
        let edge = FkEdge {
            child: col(&row, 0)?,
            cascades: cascading(col(&row, 2)?) || cascading(col(&row, 3)?),
        };
        fk_children.entry(col(&row, 1)?).or_default().push(edge);
    }

    let mut role_settings: Vec<RoleSetting> = Vec::new();
    for row in query(&tx, ROLE_SETTINGS).await? {
        let db_specific: bool = col(&row, 0)?;
        let role_specific: bool = col(&row, 1)?;
        let role: Option<String> = col(&row, 2)?;
        let setconfig: Option<Vec<String>> = col(&row, 3)?;
        if role_specific && role.is_none() {
            // A dangling role oid cannot match any login role.
            continue;
        }
        role_settings.push(parse_setconfig(
            role,
            db_specific,
            &setconfig.unwrap_or_default(),
        ));
    }

    tx.commit().await.map_err(|e| describe(&e))?;
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    Ok(Snapshot {
        serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        loaded_at: started,
        load_duration: started.elapsed(),
        relations,
        by_name,
        schemas,
        superusers,
        parents,
        children,
        view_deps,
        rule_deps,
        policy_deps,
        column_deps,
        fk_children,
        functions,
        functions_by_name,
        role_settings,
        server_search_path,
        server_isolation,
        hidden_calls,
    })
}

/// Folds into `functions` what calling them runs unnamed, and collects the
/// operators, casts and domains a query reaches by syntax (see
/// `hidden_calls.rs`). `operators` maps every operator to its function.
async fn hidden_calls(
    tx: &Transaction<'_>,
    operators: &HashMap<Oid, Oid>,
    functions: &mut HashMap<Oid, FunctionInfo>,
) -> Result<HiddenCalls, String> {
    let mut facts = hidden_facts(tx, operators).await?;
    // Signatures only add edges from functions to domains whose checks are
    // not IMMUTABLE, so they are asked for those alone; a domain whose check
    // calls such a function then needs asking in turn.
    let mut asked: HashSet<Oid> = HashSet::new();
    let domain_volatility = loop {
        let domain_volatility = hidden_calls::fold_volatility(functions, &facts);
        let checked: Vec<Oid> = domain_volatility
            .iter()
            .filter(|&(oid, &v)| v != Volatility::Immutable && !asked.contains(oid))
            .map(|(&oid, _)| oid)
            .collect();
        if checked.is_empty() {
            break domain_volatility;
        }
        for row in query_with(tx, DOMAIN_SIGNATURES, &checked).await? {
            let reach = facts.function_reach.entry(col(&row, 0)?).or_default();
            for domain in col::<Vec<Oid>>(&row, 1)? {
                reach.add_domain(domain);
            }
        }
        asked.extend(checked);
    };
    if !asked.is_empty() {
        let asked: Vec<Oid> = asked.into_iter().collect();
        for row in query_with(tx, COMPOSITES_OF_DOMAINS, &asked).await? {
            facts.checked_composites.push(col(&row, 0)?);
        }
    }
    Ok(HiddenCalls::build(&facts, functions, &domain_volatility))
}

/// What queries run without naming it, before any volatility is known.
async fn hidden_facts(
    tx: &Transaction<'_>,
    operators: &HashMap<Oid, Oid>,
) -> Result<HiddenFacts, String> {
    // Sent together: the connection pipelines them, one round trip in all.
    let (aggregates, defaults, domains, user_operators, support, casts, type_io) = tokio::try_join!(
        query(tx, AGGREGATES),
        query(tx, ARGUMENT_DEFAULTS),
        query(tx, DOMAINS),
        query(tx, USER_OPERATORS),
        query(tx, SORT_HASH_SUPPORT),
        query(tx, USER_CASTS),
        query(tx, USER_TYPE_IO),
    )?;
    let mut facts = HiddenFacts::default();
    for row in aggregates {
        let reach = facts.function_reach.entry(col(&row, 0)?).or_default();
        for oid in col::<Vec<Option<Oid>>>(&row, 1)?.into_iter().flatten() {
            if oid != 0 {
                reach.add_function(oid);
            }
        }
    }
    for row in defaults {
        let tree: String = col(&row, 1)?;
        let reach = facts.function_reach.entry(col(&row, 0)?).or_default();
        reach.add_tree(&tree, operators);
    }
    for row in domains {
        let oid: Oid = col(&row, 0)?;
        let domain = facts.domains.entry(oid).or_insert_with(|| Domain {
            name: String::new(),
            base_type: 0,
            reach: Reach::default(),
        });
        domain.name = col(&row, 1)?;
        domain.base_type = col(&row, 2)?;
        if let Some(check) = col::<Option<String>>(&row, 3)? {
            domain.reach.add_tree(&check, operators);
        }
    }
    // A domain over a domain checks its base's constraints too.
    let over_domains: Vec<(Oid, Oid)> = facts
        .domains
        .iter()
        .filter(|(_, d)| facts.domains.contains_key(&d.base_type))
        .map(|(&oid, d)| (oid, d.base_type))
        .collect();
    for (oid, base) in over_domains {
        if let Some(domain) = facts.domains.get_mut(&oid) {
            domain.reach.add_domain(base);
        }
    }
    for row in user_operators {
        facts.operators.push(UserOperator {
            oid: col(&row, 0)?,
            name: col(&row, 1)?,
            function: col(&row, 2)?,
            commutator: col(&row, 3)?,
            negator: col(&row, 4)?,
            in_opclass: col(&row, 5)?,
        });
    }
    for row in support {
        facts.sort_hash_support.push(col(&row, 0)?);
    }
    for row in casts {
        let target: Oid = col(&row, 2)?;
        facts.casts.push(UserCast {
            function: col(&row, 0)?,
            context: col::<i8>(&row, 1)? as u8,
            target,
            target_name: col(&row, 3)?,
            target_is_builtin: target < FIRST_USER_OID,
        });
    }
    for row in type_io {
        facts
            .type_io
            .extend(col::<Vec<Oid>>(&row, 0)?.into_iter().filter(|&f| f != 0));
    }
    Ok(facts)
}

/// The server's own search_path and default_transaction_isolation, i.e.
/// what a session gets when no `pg_db_role_setting` entry applies. When the
/// control session's values come from such entries (or the client), they
/// hide the server's value: then the configuration files are asked, and
/// failing that the built-in default is assumed.
async fn server_defaults(tx: &mut Transaction<'_>) -> Result<(String, String), String> {
    let mut search_path = "\"$user\", public".to_string();
    let mut isolation = "read committed".to_string();
    let mut masked = false;
    for row in query(tx, SETTINGS).await? {
        let name: String = col(&row, 0)?;
        let setting: String = col(&row, 1)?;
        let source: String = col(&row, 2)?;
        let boot: Option<String> = col(&row, 3)?;
        let value = if MASKING_SOURCES.contains(&source.as_str()) {
            masked = true;
            boot
        } else {
            Some(setting)
        };
        match (name.as_str(), value) {
            ("search_path", Some(v)) => search_path = v,
            ("default_transaction_isolation", Some(v)) => isolation = v,
            _ => {}
        }
    }
    if masked {
        // A savepoint, since lacking the privilege aborts the statement.
        let savepoint = tx
            .savepoint("pgcache_file_settings")
            .await
            .map_err(|e| describe(&e))?;
        match savepoint.query(FILE_SETTINGS, &[]).await {
            Ok(rows) => {
                for row in rows {
                    let name: String = col(&row, 0)?;
                    let setting: Option<String> = col(&row, 1)?;
                    match (name.as_str(), setting) {
                        ("search_path", Some(v)) => search_path = v,
                        ("default_transaction_isolation", Some(v)) => isolation = v,
                        _ => {}
                    }
                }
                savepoint.commit().await.map_err(|e| describe(&e))?;
            }
            Err(e) => {
                tracing::debug!(
                    error = %describe(&e),
                    "catalog: cannot read pg_file_settings; assuming built-in defaults where hidden"
                );
                savepoint.rollback().await.map_err(|e| describe(&e))?;
            }
        }
    }
    Ok((search_path, isolation))
}

/// Adds what one stored expression of `owner` refers to.
fn add_references(
    deps: &mut Deps,
    owner: Oid,
    tree: &str,
    relations: &HashMap<Oid, Relation>,
    operators: &HashMap<Oid, Oid>,
    hidden_calls: &HiddenCalls,
) {
    let refs = node_tree::references(tree);
    for oid in refs.relations {
        // Skip the owner (a view's OLD/NEW entries, a rule's own table) and
        // relations without rows of their own (indexes, composite types).
        // Unknown oids are kept: the closures report them.
        let rowless = relations
            .get(&oid)
            .is_some_and(|r| r.kind == RelKind::Other);
        if oid != owner && !rowless && !deps.relations.contains(&oid) {
            deps.relations.push(oid);
        }
    }
    // An operator without a known function becomes oid 0, which no
    // function has: the closures then assume the worst.
    let via_operators = refs
        .operators
        .iter()
        .map(|op| operators.get(op).copied().unwrap_or(0));
    for oid in refs.functions.into_iter().chain(via_operators) {
        if !deps.functions.contains(&oid) {
            deps.functions.push(oid);
        }
    }
    let checks = refs
        .domains
        .iter()
        .filter_map(|&domain| hidden_calls.domain_check(domain).cloned());
    for builtin in refs.builtins.into_iter().chain(checks) {
        if !deps.builtins.contains(&builtin) {
            deps.builtins.push(builtin);
        }
    }
}

async fn query(tx: &Transaction<'_>, sql: &str) -> Result<Vec<Row>, String> {
    tx.query(sql, &[]).await.map_err(|e| describe(&e))
}

/// A query whose one parameter is a list of oids.
async fn query_with(tx: &Transaction<'_>, sql: &str, oids: &[Oid]) -> Result<Vec<Row>, String> {
    tx.query(sql, &[&oids]).await.map_err(|e| describe(&e))
}

/// One column, as an error instead of a panic if its type is not the
/// expected one.
fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, String> {
    row.try_get(idx)
        .map_err(|e| format!("unexpected catalog column {idx}: {e}"))
}
