//! Functions a query runs without naming them.
//!
//! The analyzer reports the functions a query's text calls; the server also
//! runs, unnamed: an aggregate's support functions, the default expressions
//! of arguments left out, the CHECKs of domains a value is coerced to, the
//! functions behind user operators and casts, and user types' I/O. Each of
//! them may be STABLE (reading tables) or VOLATILE.
//!
//! Two answers come out of this file:
//!
//! * where the unnamed call belongs to a function (aggregates, defaults, the
//!   domain-typed arguments and result), the function's own volatility is
//!   raised to the worst of what it runs ([`fold_volatility`]), so every
//!   check of a function's volatility sees it;
//! * operators, casts and domains are reached from syntax, so the snapshot
//!   keeps their names ([`HiddenCalls`]) and a query's fingerprint is
//!   checked for them, token by token.
//!
//! Only user objects (oid at or above 16384) count for operators, casts and
//! types: the built-in ones are part of PostgreSQL's own volatility model.
//! Wherever syntax can reach an object without naming it (comparisons that
//! IN, BETWEEN or LIKE imply, btree and hash operator families used by
//! ORDER BY, GROUP BY and joins, implicit casts, type I/O of parameters),
//! every query is at risk.

use crate::bypass::Bypass;
use std::collections::{HashMap, HashSet};

use super::facts::{FunctionInfo, Oid, Volatility};
use super::names::truncate_identifier;
use super::node_tree;
use crate::sql::{ident_value, tokenize, TokenKind};

/// Operators that syntax calls by name without writing them: `IN` and
/// `NULLIF` and `CASE x WHEN` (=), `NOT IN` (<>), `BETWEEN` (the orderings),
/// `LIKE`/`ILIKE`/`SIMILAR TO` and their negations.
const IMPLIED_OPERATORS: &[&str] = &[
    "=", "<>", "<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "!~",
];

/// `pg_cast.castcontext` values that let the server insert the cast itself.
const IMPLICIT_CONTEXTS: &[u8] = b"ia";

/// What running an object (a function, a domain's checks) also runs.
#[derive(Debug, Clone)]
pub(super) struct Reach {
    pub functions: Vec<Oid>,
    pub domains: Vec<Oid>,
    /// The least volatility whatever it runs has; SQL-syntax functions such
    /// as CURRENT_TIMESTAMP are not function calls in a stored tree.
    pub floor: Volatility,
}

impl Default for Reach {
    fn default() -> Reach {
        Reach {
            functions: Vec::new(),
            domains: Vec::new(),
            floor: Volatility::Immutable,
        }
    }
}

impl Reach {
    pub fn add_function(&mut self, oid: Oid) {
        if !self.functions.contains(&oid) {
            self.functions.push(oid);
        }
    }

    pub fn add_domain(&mut self, oid: Oid) {
        if !self.domains.contains(&oid) {
            self.domains.push(oid);
        }
    }

    /// Adds what a stored expression runs. An operator whose function is
    /// unknown becomes function 0, which counts as VOLATILE.
    pub fn add_tree(&mut self, tree: &str, operator_functions: &HashMap<Oid, Oid>) {
        let refs = node_tree::references(tree);
        for oid in refs.functions {
            self.add_function(oid);
        }
        for op in refs.operators {
            self.add_function(operator_functions.get(&op).copied().unwrap_or(0));
        }
        for builtin in refs.builtins {
            self.floor = self.floor.max(builtin.volatility);
        }
        for domain in refs.domains {
            self.add_domain(domain);
        }
    }
}

/// A domain: what coercing a value to it checks. Its base domain's checks
/// are in `reach` too.
#[derive(Debug, Clone)]
pub(super) struct Domain {
    pub name: String,
    pub base_type: Oid,
    pub reach: Reach,
}

/// A user-defined operator.
#[derive(Debug, Clone)]
pub(super) struct UserOperator {
    pub oid: Oid,
    pub name: String,
    pub function: Oid,
    pub commutator: Oid,
    pub negator: Oid,
    /// Member of a btree or hash operator family: sorting, grouping,
    /// DISTINCT, merge and hash joins call it without its name in the text.
    pub in_opclass: bool,
}

/// A user-defined cast with a function (`castmethod = 'f'`).
#[derive(Debug, Clone)]
pub(super) struct UserCast {
    pub function: Oid,
    /// `pg_cast.castcontext`: `e` explicit, `a` assignment, `i` implicit.
    pub context: u8,
    pub target: Oid,
    pub target_name: String,
    /// A built-in target type has spellings the text may use instead of
    /// its catalog name (`integer` for `int4`).
    pub target_is_builtin: bool,
}

/// Everything loaded about unnamed calls, before volatility is folded in.
#[derive(Debug, Default)]
pub(super) struct HiddenFacts {
    /// What calling a function runs beyond its body: an aggregate's
    /// support functions, argument defaults, its domain-typed arguments'
    /// and result's checks.
    pub function_reach: HashMap<Oid, Reach>,
    pub domains: HashMap<Oid, Domain>,
    /// Composite types with a field of a domain whose checks are not
    /// IMMUTABLE.
    pub checked_composites: Vec<String>,
    pub operators: Vec<UserOperator>,
    /// User support functions of btree and hash operator families.
    pub sort_hash_support: Vec<Oid>,
    pub casts: Vec<UserCast>,
    /// User base types' input, output, receive and send functions.
    pub type_io: Vec<Oid>,
}

/// Raises every function's volatility to the worst of what calling it
/// runs, and returns each domain's check volatility. A fixed point: a
/// default may call a function whose own default is volatile, a domain may
/// check through a function with a domain argument. Each round raises some
/// volatility or ends the loop, so it ends.
pub(super) fn fold_volatility(
    functions: &mut HashMap<Oid, FunctionInfo>,
    facts: &HiddenFacts,
) -> HashMap<Oid, Volatility> {
    let mut domains: HashMap<Oid, Volatility> = facts
        .domains
        .keys()
        .map(|&oid| (oid, Volatility::Immutable))
        .collect();
    loop {
        let mut changed = false;
        for (oid, domain) in &facts.domains {
            let worst = reach_volatility(&domain.reach, functions, &domains);
            if domains.get(oid).is_none_or(|&v| worst > v) {
                domains.insert(*oid, worst);
                changed = true;
            }
        }
        for (oid, reach) in &facts.function_reach {
            let worst = reach_volatility(reach, functions, &domains);
            if let Some(info) = functions.get_mut(oid) {
                if worst > info.volatility {
                    info.volatility = worst;
                    changed = true;
                }
            }
        }
        if !changed {
            return domains;
        }
    }
}

/// The worst volatility of what `reach` runs; unknown objects are VOLATILE.
fn reach_volatility(
    reach: &Reach,
    functions: &HashMap<Oid, FunctionInfo>,
    domains: &HashMap<Oid, Volatility>,
) -> Volatility {
    let calls = reach
        .functions
        .iter()
        .map(|oid| volatility(functions, *oid));
    let checks = reach
        .domains
        .iter()
        .map(|oid| domains.get(oid).copied().unwrap_or(Volatility::Volatile));
    calls.chain(checks).fold(reach.floor, Volatility::max)
}

fn volatility(functions: &HashMap<Oid, FunctionInfo>, oid: Oid) -> Volatility {
    functions
        .get(&oid)
        .map_or(Volatility::Volatile, |f| f.volatility)
}

/// The operators, casts and domains a query reaches by syntax and whose
/// functions are not IMMUTABLE, by the names a query's text would use.
/// Empty in the common case, and then nothing is tokenized.
#[derive(Debug, Default, Clone)]
pub(super) struct HiddenCalls {
    /// Reached by every query, whatever its text.
    always: Option<Bypass>,
    /// Operator tokens.
    operators: HashSet<String>,
    /// Type and domain names (as identifiers), with the reason.
    names: HashMap<String, Bypass>,
    /// Domains whose checks are not IMMUTABLE, as pseudo-functions (oid 0)
    /// for stored expressions that coerce to them (a view's `a::domain`).
    checked_domains: HashMap<Oid, FunctionInfo>,
}

impl HiddenCalls {
    /// Collects the risky objects from `facts`, with volatility already
    /// folded (`functions`, `domain_volatility`).
    pub(super) fn build(
        facts: &HiddenFacts,
        functions: &HashMap<Oid, FunctionInfo>,
        domain_volatility: &HashMap<Oid, Volatility>,
    ) -> HiddenCalls {
        let mut calls = HiddenCalls::default();
        let non_immutable = |oid: Oid| volatility(functions, oid) != Volatility::Immutable;

        let risky_operators: HashSet<Oid> = facts
            .operators
            .iter()
            .filter(|op| non_immutable(op.function))
            .map(|op| op.oid)
            .collect();
        for op in &facts.operators {
            // The planner may run an operator's commutator (to match an
            // index) or its negator (for NOT) in its place.
            let runs_risky = [op.oid, op.commutator, op.negator]
                .iter()
                .any(|oid| risky_operators.contains(oid));
            if !runs_risky {
                continue;
            }
            if op.in_opclass || IMPLIED_OPERATORS.contains(&op.name.as_str()) {
                calls.always = Some(Bypass::VolatileOperator);
            }
            calls.operators.insert(op.name.clone());
        }
        if facts.sort_hash_support.iter().any(|&f| non_immutable(f)) {
            calls.always = calls.always.or(Some(Bypass::VolatileOperator));
        }

        for cast in facts.casts.iter().filter(|c| non_immutable(c.function)) {
            if IMPLICIT_CONTEXTS.contains(&cast.context) || cast.target_is_builtin {
                calls.always = calls.always.or(Some(Bypass::VolatileCast));
                continue;
            }
            calls.add_name(&cast.target_name, Bypass::VolatileCast);
            // Coercing to a domain over the target runs the cast first.
            for domain in facts.domains.values() {
                if domain_reaches_type(facts, domain, cast.target) {
                    calls.add_name(&domain.name, Bypass::VolatileCast);
                }
            }
        }

        for (oid, domain) in &facts.domains {
            let volatility = domain_volatility
                .get(oid)
                .copied()
                .unwrap_or(Volatility::Volatile);
            if volatility == Volatility::Immutable {
                continue;
            }
            calls.add_name(&domain.name, Bypass::VolatileDomainCheck);
            let check = FunctionInfo {
                oid: 0,
                volatility,
                is_system: false,
                schema: String::new(),
                name: format!("{} (domain check)", domain.name),
            };
            calls.checked_domains.insert(*oid, check);
        }
        for composite in &facts.checked_composites {
            calls.add_name(composite, Bypass::VolatileDomainCheck);
        }

        // A parameter's type comes by oid in Parse and a result's output
        // function runs on every row: no syntax to look for. Only VOLATILE
        // counts: type I/O is C code, and STABLE is how PostgreSQL's own
        // text and time types mark I/O that follows client_encoding,
        // TimeZone or DateStyle, all part of the session's key (citext's
        // binary I/O is STABLE for that reason).
        if facts
            .type_io
            .iter()
            .any(|&f| volatility(functions, f) == Volatility::Volatile)
        {
            calls.always = calls.always.or(Some(Bypass::VolatileTypeIo));
        }
        calls
    }

    /// The check of a domain a stored expression coerces to, if it is not
    /// IMMUTABLE.
    pub(super) fn domain_check(&self, domain: Oid) -> Option<&FunctionInfo> {
        self.checked_domains.get(&domain)
    }

    fn add_name(&mut self, name: &str, reason: Bypass) {
        self.names.entry(name.to_string()).or_insert(reason);
    }

    /// Why a query with this fingerprint may run a non-immutable function
    /// it does not name, or `None`.
    pub(super) fn risk(&self, fingerprint: &str) -> Option<Bypass> {
        if self.always.is_some() {
            return self.always;
        }
        if self.operators.is_empty() && self.names.is_empty() {
            return None;
        }
        for token in tokenize(fingerprint) {
            let text = token.text(fingerprint);
            let found = match token.kind {
                TokenKind::Op if self.operators.contains(text) => Some(Bypass::VolatileOperator),
                TokenKind::Word => self.names.get(truncate_identifier(text)).copied(),
                TokenKind::Ident { .. } => {
                    let name = ident_value(fingerprint, &token);
                    self.names.get(truncate_identifier(&name)).copied()
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// Whether `domain`, or a domain it is built on, has `target` as its base.
fn domain_reaches_type(facts: &HiddenFacts, domain: &Domain, target: Oid) -> bool {
    let mut base = domain.base_type;
    // Domain chains are acyclic; the bound only guards a corrupt catalog.
    for _ in 0..=facts.domains.len() {
        if base == target {
            return true;
        }
        match facts.domains.get(&base) {
            Some(next) => base = next.base_type,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(oid: Oid, volatility: Volatility) -> (Oid, FunctionInfo) {
        let info = FunctionInfo {
            oid,
            volatility,
            is_system: false,
            schema: "public".to_string(),
            name: format!("f{oid}"),
        };
        (oid, info)
    }

    fn operator(oid: Oid, name: &str, function: Oid) -> UserOperator {
        UserOperator {
            oid,
            name: name.to_string(),
            function,
            commutator: 0,
            negator: 0,
            in_opclass: false,
        }
    }

    fn build(facts: &HiddenFacts, functions: &mut HashMap<Oid, FunctionInfo>) -> HiddenCalls {
        let domains = fold_volatility(functions, facts);
        HiddenCalls::build(facts, functions, &domains)
    }

    #[test]
    fn operators_by_token() {
        let mut functions: HashMap<Oid, FunctionInfo> = [
            function(1, Volatility::Stable),
            function(2, Volatility::Immutable),
        ]
        .into();
        let mut negated = operator(12, "!==", 2);
        negated.negator = 11;
        let facts = HiddenFacts {
            operators: vec![
                operator(10, "#+#", 1),
                operator(11, "===", 1),
                negated,
                operator(13, "@@@", 2),
            ],
            ..HiddenFacts::default()
        };
        let calls = build(&facts, &mut functions);
        let risk = |fp: &str| calls.risk(fp);
        assert_eq!(
            risk("select a #+# b from t"),
            Some(Bypass::VolatileOperator)
        );
        assert_eq!(
            risk("select * from t where a operator(public.===) $1"),
            Some(Bypass::VolatileOperator)
        );
        // NOT (a !== b) may run as a === b.
        assert_eq!(
            risk("select a !== b from t"),
            Some(Bypass::VolatileOperator)
        );
        assert_eq!(risk("select a @@@ b, a + b from t"), None);
        // A longer operator token is another operator.
        assert_eq!(risk("select a #+## b from t"), None);
        assert_eq!(risk("select $1 from \"#+#\""), None);
    }

    #[test]
    fn implied_or_opclass_operators_are_always_reached() {
        for (name, in_opclass) in [("=", false), ("~~", false), ("<<<", true)] {
            let mut functions: HashMap<Oid, FunctionInfo> =
                [function(1, Volatility::Volatile)].into();
            let mut op = operator(10, name, 1);
            op.in_opclass = in_opclass;
            let facts = HiddenFacts {
                operators: vec![op],
                ..HiddenFacts::default()
            };
            let calls = build(&facts, &mut functions);
            assert_eq!(
                calls.risk("select a from t order by a"),
                Some(Bypass::VolatileOperator)
            );
        }
    }

    #[test]
    fn names_match_identifiers_only() {
        let mut functions: HashMap<Oid, FunctionInfo> = [
            function(1, Volatility::Stable),
            function(2, Volatility::Immutable),
        ]
        .into();
        let mut checked = Reach::default();
        checked.add_function(1);
        let mut plain = Reach::default();
        plain.add_function(2);
        let facts = HiddenFacts {
            domains: [
                (
                    100,
                    Domain {
                        name: "Positive".to_string(),
                        base_type: 23,
                        reach: checked,
                    },
                ),
                (
                    101,
                    Domain {
                        name: "plain".to_string(),
                        base_type: 23,
                        reach: plain,
                    },
                ),
            ]
            .into(),
            casts: vec![UserCast {
                function: 1,
                context: b'e',
                target: 200,
                target_name: "mood".to_string(),
                target_is_builtin: false,
            }],
            ..HiddenFacts::default()
        };
        let calls = build(&facts, &mut functions);
        assert_eq!(calls.risk("select $1::mood"), Some(Bypass::VolatileCast));
        assert_eq!(
            calls.risk("select cast($1 as s.mood [ ])"),
            Some(Bypass::VolatileCast)
        );
        assert_eq!(
            calls.risk("select $1::\"Positive\""),
            Some(Bypass::VolatileDomainCheck)
        );
        // Unquoted, the name folds to another one.
        assert_eq!(calls.risk("select $1::positive"), None);
        assert_eq!(calls.risk("select $1::plain, moods from t"), None);
        assert_eq!(calls.risk("select $1 where a = $2"), None);
    }

    #[test]
    fn implicit_casts_support_functions_and_type_io_are_always_reached() {
        let mut functions: HashMap<Oid, FunctionInfo> = [function(1, Volatility::Stable)].into();
        let cast = |context, target_is_builtin| UserCast {
            function: 1,
            context,
            target: 200,
            target_name: "mood".to_string(),
            target_is_builtin,
        };
        for cast in [cast(b'i', false), cast(b'a', false), cast(b'e', true)] {
            let facts = HiddenFacts {
                casts: vec![cast],
                ..HiddenFacts::default()
            };
            assert_eq!(
                build(&facts, &mut functions).risk("select 1"),
                Some(Bypass::VolatileCast)
            );
        }
        let facts = HiddenFacts {
            sort_hash_support: vec![1],
            ..HiddenFacts::default()
        };
        assert_eq!(
            build(&facts, &mut functions).risk("select 1"),
            Some(Bypass::VolatileOperator)
        );
        // STABLE type I/O follows keyed settings; VOLATILE may do anything.
        functions.extend([function(2, Volatility::Volatile)]);
        let facts = HiddenFacts {
            type_io: vec![1],
            ..HiddenFacts::default()
        };
        assert_eq!(build(&facts, &mut functions).risk("select 1"), None);
        let facts = HiddenFacts {
            type_io: vec![1, 2],
            ..HiddenFacts::default()
        };
        assert_eq!(
            build(&facts, &mut functions).risk("select 1"),
            Some(Bypass::VolatileTypeIo)
        );
    }

    #[test]
    fn folding_follows_defaults_aggregates_and_domains() {
        let mut functions: HashMap<Oid, FunctionInfo> = [
            function(1, Volatility::Immutable),
            function(2, Volatility::Immutable),
            function(3, Volatility::Stable),
            function(4, Volatility::Immutable),
            function(5, Volatility::Immutable),
        ]
        .into();
        let mut facts = HiddenFacts::default();
        // 1's default calls 2, whose default calls 3 (STABLE).
        facts.function_reach.entry(1).or_default().add_function(2);
        facts.function_reach.entry(2).or_default().add_function(3);
        // 4 takes a domain over a domain whose check calls 3.
        let mut base_check = Reach::default();
        base_check.add_function(3);
        let mut over = Reach::default();
        over.add_domain(100);
        facts.domains.insert(
            100,
            Domain {
                name: "d1".to_string(),
                base_type: 23,
                reach: base_check,
            },
        );
        facts.domains.insert(
            101,
            Domain {
                name: "d2".to_string(),
                base_type: 100,
                reach: over,
            },
        );
        facts.function_reach.entry(4).or_default().add_domain(101);
        // 5 reaches nothing.
        facts.function_reach.insert(5, Reach::default());

        let domains = fold_volatility(&mut functions, &facts);
        let v = |oid| functions[&oid].volatility;
        assert_eq!(
            [v(1), v(2), v(3), v(4), v(5)],
            [
                Volatility::Stable,
                Volatility::Stable,
                Volatility::Stable,
                Volatility::Stable,
                Volatility::Immutable
            ]
        );
        assert_eq!(domains[&101], Volatility::Stable);

        // An unknown function counts as VOLATILE.
        facts
            .function_reach
            .entry(5)
            .or_default()
            .add_function(1000);
        fold_volatility(&mut functions, &facts);
        assert_eq!(functions[&5].volatility, Volatility::Volatile);
    }
}
