//! References read out of stored expressions (`pg_node_tree` as text: view
//! queries, rule actions, policy quals, column defaults, CHECKs).
//!
//! Why not pg_depend: PostgreSQL does not record dependencies on pinned
//! objects, i.e. everything created by initdb's bootstrap (now(), lower(),
//! every built-in operator, pg_class...). A view over `now()` has no
//! pg_depend row for it. The stored tree names every function, operator and
//! relation by oid, in fields whose names are stable across versions.
//!
//! The text format: nodes are `{NAME :field value ...}`, scalars are bare
//! tokens, oid lists are `(o 1 2)`. Tokens escape spaces and brackets with a
//! backslash, so `:field ` followed by digits cannot occur inside a name.

use super::facts::{FunctionInfo, Oid, Volatility};

/// Node fields holding a function oid: FuncExpr, OpExpr and friends
/// (opfuncid), ScalarArrayOpExpr (hash/negator functions), Aggref,
/// WindowFunc, TableSampleClause, WindowClause RANGE support functions.
const FUNCTION_FIELDS: &[&str] = &[
    "funcid",
    "opfuncid",
    "hashfuncid",
    "negfuncid",
    "aggfnoid",
    "winfnoid",
    "tsmhandler",
    "startInRangeFunc",
    "endInRangeFunc",
];

/// Fields holding operator oids (their implementing function is what
/// runs): OpExpr (also when opfuncid is unset), SortGroupClause, and
/// RowCompareExpr's list.
const OPERATOR_FIELDS: &[&str] = &["opno", "eqop", "sortop", "opnos"];

/// Fields holding relation oids: RangeTblEntry (tables, views, subqueries'
/// tables at any depth) and NextValueExpr (identity sequences).
const RELATION_FIELDS: &[&str] = &["relid", "seqid"];

/// Every oid one stored expression refers to.
#[derive(Debug, Default)]
pub(super) struct NodeRefs {
    pub relations: Vec<Oid>,
    pub functions: Vec<Oid>,
    pub operators: Vec<Oid>,
    /// SQL-syntax functions (CURRENT_DATE, CURRENT_USER, ...): in
    /// PostgreSQL 15 they are SQLValueFunction nodes, not function calls,
    /// so they are reported as STABLE pseudo-functions with oid 0.
    pub builtins: Vec<FunctionInfo>,
    /// Domains a value is coerced to (CoerceToDomain): their CHECKs run.
    pub domains: Vec<Oid>,
}

/// Scans one tree. Unknown fields are ignored; oid 0 means "none".
pub(super) fn references(tree: &str) -> NodeRefs {
    let mut refs = NodeRefs::default();
    let bytes = tree.as_bytes();
    let mut i = 0;
    while let Some(offset) = tree[i..].find(':') {
        let start = i + offset + 1;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        i = end.max(start);
        if end >= bytes.len() || bytes[end] != b' ' {
            continue;
        }
        let field = &tree[start..end];
        let target = if FUNCTION_FIELDS.contains(&field) {
            &mut refs.functions
        } else if OPERATOR_FIELDS.contains(&field) {
            &mut refs.operators
        } else if RELATION_FIELDS.contains(&field) {
            &mut refs.relations
        } else {
            continue;
        };
        let (oids, next) = read_oids(tree, end + 1);
        i = next;
        for oid in oids {
            if oid != 0 && !target.contains(&oid) {
                target.push(oid);
            }
        }
    }
    refs.builtins = sql_value_functions(tree);
    refs.domains = domain_coercions(tree);
    refs
}

/// The result types of the CoerceToDomain nodes in a tree. The field comes
/// after the node's argument, itself a node, so it is looked for where the
/// brackets are back at the node's own level.
fn domain_coercions(tree: &str) -> Vec<Oid> {
    const NODE: &str = "{COERCETODOMAIN ";
    const FIELD: &str = ":resulttype ";
    let mut found = Vec::new();
    for (start, _) in tree.match_indices(NODE) {
        let bytes = tree.as_bytes();
        let mut depth = 0usize;
        let mut i = start + NODE.len();
        while i < bytes.len() {
            match bytes[i] {
                // An escaped character belongs to a token, never a bracket.
                b'\\' => i += 1,
                b'{' | b'(' => depth += 1,
                b'}' | b')' if depth == 0 => break,
                b'}' | b')' => depth -= 1,
                b':' if depth == 0 && tree[i..].starts_with(FIELD) => {
                    let (oids, _) = read_oids(tree, i + FIELD.len());
                    for oid in oids {
                        if oid != 0 && !found.contains(&oid) {
                            found.push(oid);
                        }
                    }
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    found
}

/// The oid value at `at`: a number, or a list `(o 1 2 3)`. Returns the
/// oids and where scanning continues.
fn read_oids(tree: &str, at: usize) -> (Vec<Oid>, usize) {
    let rest = &tree[at..];
    if let Some(list) = rest.strip_prefix("(o ") {
        let close = list.find(')').unwrap_or(list.len());
        let oids = list[..close]
            .split_ascii_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        return (oids, at + 3 + close);
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let oids = rest[..digits].parse().ok().into_iter().collect();
    (oids, at + digits)
}

/// The SQLValueFunction nodes in a tree, named after their SQL syntax by
/// PostgreSQL 15's SQLValueFunctionOp numbering; an unknown op still
/// counts (as `sql_value_function`). All are STABLE.
fn sql_value_functions(tree: &str) -> Vec<FunctionInfo> {
    const NODE: &str = "{SQLVALUEFUNCTION :op ";
    let mut found: Vec<FunctionInfo> = Vec::new();
    for (start, _) in tree.match_indices(NODE) {
        let (ops, _) = read_oids(tree, start + NODE.len());
        let name = match ops.first() {
            Some(0) => "current_date",
            Some(1 | 2) => "current_time",
            Some(3 | 4) => "current_timestamp",
            Some(5 | 6) => "localtime",
            Some(7 | 8) => "localtimestamp",
            Some(9) => "current_role",
            Some(10) => "current_user",
            Some(11) => "user",
            Some(12) => "session_user",
            Some(13) => "current_catalog",
            Some(14) => "current_schema",
            _ => "sql_value_function",
        };
        if found.iter().all(|f| f.name != name) {
            found.push(FunctionInfo {
                oid: 0,
                volatility: Volatility::Stable,
                is_system: true,
                schema: "pg_catalog".to_string(),
                name: name.to_string(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_functions_operators_relations() {
        let tree = "({QUERY :rtable ({RANGETBLENTRY :alias {ALIAS :aliasname a\\:funcid\\ 9 :colnames <>} \
            :rtekind 0 :relid 16387 :relkind r} {RANGETBLENTRY :rtekind 1 :relid 0}) \
            :quals {OPEXPR :opno 1324 :opfuncid 1157 :args ({FUNCEXPR :funcid 1299 :args <>})} \
            {ROWCOMPAREEXPR :rctype 1 :opnos (o 97 98) :opfamilies (o 1976 1976)} \
            {SCALARARRAYOPEXPR :opno 96 :opfuncid 65 :hashfuncid 0 :negfuncid 0} \
            {WINDOWFUNC :winfnoid 2803} {SORTGROUPCLAUSE :eqop 96 :sortop 97} \
            {SQLVALUEFUNCTION :op 3 :type 1184} {SQLVALUEFUNCTION :op 10 :type 19})";
        let refs = references(tree);
        assert_eq!(refs.relations, [16387]);
        assert_eq!(refs.functions, [1157, 1299, 65, 2803]);
        assert_eq!(refs.operators, [1324, 97, 98, 96]);
        let names: Vec<&str> = refs.builtins.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["current_timestamp", "current_user"]);
    }

    #[test]
    fn reads_domain_coercions_past_their_argument() {
        let tree = "({TARGETENTRY :expr {COERCETODOMAIN :arg {FUNCEXPR :funcid 1 \
            :args ({VAR :varno 3 :resulttype 99}) :name a\\}\\ :resulttype\\ 98} \
            :resulttype 16403 :resulttypmod -1} :resno 1} \
            {COERCETODOMAIN :arg {CONST :consttype 23 :constvalue 4 [ 5 0 0 0 ]} :resulttype 16403} \
            {COERCETODOMAIN :arg {VAR :varno 1} :resulttype 16410})";
        assert_eq!(references(tree).domains, [16403, 16410]);
        assert!(references("{COERCETODOMAIN :arg {VAR").domains.is_empty());
        assert!(references("{COERCETODOMAIN :arg {VAR} }")
            .domains
            .is_empty());
    }

    #[test]
    fn tolerates_truncated_input() {
        let refs = references(":funcid ");
        assert!(refs.functions.is_empty());
        let refs = references(":opnos (o 5 6");
        assert_eq!(refs.operators, [5, 6]);
        assert!(references("").relations.is_empty());
        assert!(references(":").relations.is_empty());
    }
}
