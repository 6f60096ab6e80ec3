//! Relations, functions and write targets of a parsed statement, collected
//! with sqlparser's visitor.
//!
//! What the visitor's shortcuts cover, and why this uses the raw hooks:
//! `visit_relations` reports every `ObjectName` in a relation position, which
//! includes INSERT targets, table functions in FROM (`generate_series(..)` is a
//! `TableFactor::Table` with `args`) and CTE references alike. So relations
//! come from `pre_visit_table_factor` (telling tables from table functions by
//! `args`), targets from `pre_visit_statement` on the DML nodes (a writable
//! CTE is a nested `Statement` inside `SetExpr::{Insert,Update,Delete,Merge}`,
//! which the visitor reaches), and functions from `pre_visit_expr` plus the
//! function-shaped table factors. The derived visitor grows its stack on
//! demand (sqlparser's `recursive-protection`), so deep trees are fine here.
//!
//! The collector also refuses ASTs it cannot vouch for: sqlparser accepts
//! other dialects' syntax under `PostgreSqlDialect`, and a PostgreSQL text
//! that lands in such a node was misread (for example `FROM ONLY t` used to
//! come back as a table named "ONLY" with alias `t`). Any such node makes the
//! statement Unknown rather than a guess.

use crate::bypass::Bypass;
use std::collections::HashSet;
use std::hash::Hash;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FromTable, FunctionArguments, Ident, LimitClause, ObjectName, Query, Select,
    SelectFlavor, SetExpr, Statement as Ast, TableFactor, TableObject, TrimWhereField,
    UpdateTableFromKind, Visit, Visitor,
};

use super::analysis::{FuncName, Read, RelName};
use super::keywords;

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1).
const MAX_IDENT_BYTES: usize = 63;

#[derive(Default)]
pub(crate) struct Collected {
    pub relations: Unique<RelName>,
    pub cte_names: Unique<String>,
    pub functions: Unique<FuncName>,
    pub targets: Unique<RelName>,
    pub has_dml: bool,
    pub locking: bool,
    pub tablesample: bool,
    pub select_into: bool,
}

impl Collected {
    pub fn read(&self) -> Read {
        let uncacheable = if self.locking {
            Some(Bypass::LockingClause)
        } else if self.tablesample {
            Some(Bypass::Tablesample)
        } else {
            None
        };
        Read {
            relations: self.relations.items.clone(),
            cte_names: self.cte_names.items.clone(),
            functions: self.functions.items.clone(),
            uncacheable,
        }
    }
}

/// Names in order of first appearance, without repeats; a hash set finds
/// repeats, so a statement naming n tables costs O(n), not O(n^2).
pub(crate) struct Unique<T> {
    pub items: Vec<T>,
    seen: HashSet<T>,
}

impl<T> Default for Unique<T> {
    fn default() -> Self {
        Unique {
            items: Vec::new(),
            seen: HashSet::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Unique<T> {
    fn push(&mut self, x: T) {
        if self.seen.insert(x.clone()) {
            self.items.push(x);
        }
    }
}

/// Walk one statement. `Err` carries why the AST cannot be trusted.
pub(crate) fn collect(stmt: &Ast) -> Result<Collected, String> {
    let mut c = Collector::default();
    match stmt.visit(&mut c) {
        ControlFlow::Continue(()) => Ok(c.out),
        ControlFlow::Break(reason) => Err(reason),
    }
}

#[derive(Default)]
struct Collector {
    out: Collected,
    /// Table factors that are DML targets, so they are not also reported as
    /// reads. Compared by address: the AST is not moved during the walk.
    skip: Vec<*const TableFactor>,
}

type Flow = ControlFlow<String>;

fn unsure<T: Into<String>>(why: T) -> Flow {
    ControlFlow::Break(why.into())
}

/// Fold one identifier as PostgreSQL does.
pub(crate) fn fold_ident(value: &str, quoted: bool) -> String {
    let mut s = if quoted {
        value.to_owned()
    } else {
        value.to_ascii_lowercase()
    };
    truncate_ident(&mut s);
    s
}

pub(crate) fn truncate_ident(s: &mut String) {
    if s.len() > MAX_IDENT_BYTES {
        let mut cut = MAX_IDENT_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn fold(id: &Ident) -> String {
    fold_ident(&id.value, id.quote_style.is_some())
}

/// `[catalog.][schema.]name` parts, folded. `check_reserved` refuses an
/// unquoted reserved keyword as the first part, which PostgreSQL never
/// accepts as a relation name and which therefore means sqlparser misread the
/// text.
fn name_parts(name: &ObjectName, check_reserved: bool) -> Result<(Option<String>, String), String> {
    let mut parts = Vec::with_capacity(name.0.len());
    for p in &name.0 {
        match p.as_ident() {
            // PostgreSQL quotes names with `"` only: a name sqlparser read
            // from a string literal (`FROM 'x'`) is a misreading of a text
            // the server rejects, and its value, a literal, would differ
            // between texts of one shape.
            Some(id) if id.quote_style.is_some_and(|q| q != '"') => {
                return Err(format!("a string literal where a name goes: {name}"))
            }
            Some(id) => parts.push(id),
            None => return Err(format!("unsupported name form: {name}")),
        }
    }
    if check_reserved {
        if let Some(first) = parts.first() {
            if first.quote_style.is_none() && keywords::is_reserved(&first.value) {
                return Err(format!(
                    "reserved word {} used as a relation name",
                    first.value
                ));
            }
        }
    }
    match parts.as_slice() {
        [n] => Ok((None, fold(n))),
        [s, n] | [_, s, n] => Ok((Some(fold(s)), fold(n))),
        _ => Err(format!("improper qualified name: {name}")),
    }
}

fn rel_name(name: &ObjectName) -> Result<RelName, String> {
    let (schema, name) = name_parts(name, true)?;
    Ok(RelName { schema, name })
}

fn func_name(name: &ObjectName) -> Result<FuncName, String> {
    let (schema, name) = name_parts(name, false)?;
    Ok(FuncName { schema, name })
}

/// SQL-standard value functions, written without parentheses. PostgreSQL
/// reserves these words, so an unquoted bare `current_role` is always the
/// function, never a column.
const VALUE_FUNCTIONS: &[&str] = &[
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "system_user",
    "user",
];

/// Unqualified names that PostgreSQL parses as expression syntax, not as calls
/// of a `pg_proc` function. Reporting them would only make the proxy look up
/// functions that do not exist.
const SPECIAL_FORMS: &[&str] = &[
    "coalesce",
    "greatest",
    "grouping",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_value",
    "least",
    "merge_action",
    "nullif",
    "row",
    "xmlconcat",
    "xmlelement",
    "xmlforest",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
];

impl Collector {
    fn function(&mut self, schema: Option<&str>, name: &str) {
        self.out.functions.push(FuncName::new(schema, name));
    }

    fn target_factor(&mut self, tf: &TableFactor) -> Flow {
        match tf {
            TableFactor::Table {
                name, args: None, ..
            } => {
                match rel_name(name) {
                    Ok(r) => self.out.targets.push(r),
                    Err(e) => return unsure(e),
                }
                self.skip.push(tf as *const TableFactor);
                ControlFlow::Continue(())
            }
            _ => unsure("unsupported write target"),
        }
    }

    fn dml(&mut self, stmt: &Ast) -> Flow {
        self.out.has_dml = true;
        match stmt {
            Ast::Insert(ins) => {
                if ins.or.is_some()
                    || ins.ignore
                    || !ins.into
                    || ins.overwrite
                    || ins.replace_into
                    || ins.priority.is_some()
                    || ins.insert_alias.is_some()
                    || ins.settings.is_some()
                    || ins.format_clause.is_some()
                    || ins.partitioned.is_some()
                    || !ins.after_columns.is_empty()
                    || ins.has_table_keyword
                    || ins.output.is_some()
                    || !ins.assignments.is_empty()
                    || ins.multi_table_insert_type.is_some()
                    || !ins.multi_table_into_clauses.is_empty()
                    || !ins.multi_table_when_clauses.is_empty()
                    || ins.multi_table_else_clause.is_some()
                {
                    return unsure("INSERT form not in PostgreSQL");
                }
                match &ins.table {
                    TableObject::TableName(name) => match rel_name(name) {
                        Ok(r) => self.out.targets.push(r),
                        Err(e) => return unsure(e),
                    },
                    _ => return unsure("unsupported INSERT target"),
                }
                ControlFlow::Continue(())
            }
            Ast::Update(up) => {
                if up.or.is_some()
                    || !up.order_by.is_empty()
                    || up.limit.is_some()
                    || up.output.is_some()
                    || !up.table.joins.is_empty()
                    || matches!(up.from, Some(UpdateTableFromKind::BeforeSet(_)))
                {
                    return unsure("UPDATE form not in PostgreSQL");
                }
                self.target_factor(&up.table.relation)
            }
            Ast::Delete(del) => {
                if !del.tables.is_empty()
                    || !del.order_by.is_empty()
                    || del.limit.is_some()
                    || del.output.is_some()
                {
                    return unsure("DELETE form not in PostgreSQL");
                }
                match &del.from {
                    FromTable::WithFromKeyword(t) if t.len() == 1 && t[0].joins.is_empty() => {
                        self.target_factor(&t[0].relation)
                    }
                    _ => unsure("DELETE form not in PostgreSQL"),
                }
            }
            Ast::Merge(m) => {
                if m.output.is_some() {
                    return unsure("MERGE form not in PostgreSQL");
                }
                self.target_factor(&m.table)
            }
            _ => unsure("unexpected nested statement"),
        }
    }

    /// `TABLE t` inside a set operation: sqlparser keeps its name unfolded and
    /// without quoting information, so refuse it (the rewrite in `parse.rs`
    /// turns the common positions into `SELECT * FROM`).
    fn check_set_expr(&mut self, body: &SetExpr) -> Flow {
        let mut stack = vec![body];
        while let Some(e) = stack.pop() {
            match e {
                SetExpr::SetOperation { left, right, .. } => {
                    stack.push(left);
                    stack.push(right);
                }
                SetExpr::Table(_) => return unsure("TABLE form not supported here"),
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Collector {
    type Break = String;

    fn pre_visit_statement(&mut self, stmt: &Ast) -> Flow {
        match stmt {
            Ast::Query(_) => ControlFlow::Continue(()),
            Ast::Insert(_) | Ast::Update(_) | Ast::Delete(_) | Ast::Merge(_) => self.dml(stmt),
            _ => unsure("unexpected statement kind"),
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> Flow {
        if q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
            || matches!(q.limit_clause, Some(LimitClause::OffsetCommaLimit { .. }))
        {
            return unsure("query form not in PostgreSQL");
        }
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                if cte.from.is_some() {
                    return unsure("CTE form not in PostgreSQL");
                }
                self.out.cte_names.push(fold(&cte.alias.name));
            }
        }
        if !q.locks.is_empty() {
            self.out.locking = true;
        }
        self.check_set_expr(&q.body)
    }

    fn pre_visit_select(&mut self, s: &Select) -> Flow {
        if s.top.is_some()
            || s.select_modifiers.is_some()
            || s.exclude.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.qualify.is_some()
            || s.value_table_mode.is_some()
            || s.flavor != SelectFlavor::Standard
        {
            return unsure("SELECT form not in PostgreSQL");
        }
        if s.into.is_some() {
            self.out.select_into = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> Flow {
        match tf {
            TableFactor::Table {
                name,
                args,
                with_hints,
                version,
                partitions,
                json_path,
                sample,
                index_hints,
                ..
            } => {
                if !with_hints.is_empty()
                    || version.is_some()
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_hints.is_empty()
                {
                    return unsure("table reference form not in PostgreSQL");
                }
                if sample.is_some() {
                    self.out.tablesample = true;
                }
                if args.is_some() {
                    // `FROM generate_series(1, 3)`: a function, not a table.
                    match func_name(name) {
                        Ok(f) => self.out.functions.push(f),
                        Err(e) => return unsure(e),
                    }
                } else if !self.skip.contains(&(tf as *const TableFactor)) {
                    match rel_name(name) {
                        Ok(r) => self.out.relations.push(r),
                        Err(e) => return unsure(e),
                    }
                }
            }
            TableFactor::Derived { sample, .. } => {
                if sample.is_some() {
                    self.out.tablesample = true;
                }
            }
            TableFactor::Function { name, .. } => match func_name(name) {
                Ok(f) => self.out.functions.push(f),
                Err(e) => return unsure(e),
            },
            TableFactor::UNNEST { .. } => self.function(None, "unnest"),
            // Expression syntax; their arguments are visited as expressions.
            TableFactor::JsonTable { .. }
            | TableFactor::XmlTable { .. }
            | TableFactor::NestedJoin { .. } => {}
            _ => return unsure("table factor form not in PostgreSQL"),
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> Flow {
        match e {
            Expr::Function(f) => {
                if !matches!(f.parameters, FunctionArguments::None)
                    || f.uses_odbc_syntax
                    || f.null_treatment.is_some()
                {
                    return unsure("function call form not in PostgreSQL");
                }
                let unqualified = match f.name.0.as_slice() {
                    [p] => p
                        .as_ident()
                        .filter(|id| id.quote_style.is_none())
                        .map(|id| id.value.to_ascii_lowercase()),
                    _ => None,
                };
                if let Some(n) = &unqualified {
                    if SPECIAL_FORMS.contains(&n.as_str())
                        || (n == "array" && matches!(f.args, FunctionArguments::Subquery(_)))
                    {
                        return ControlFlow::Continue(());
                    }
                }
                match func_name(&f.name) {
                    Ok(fname) => self.out.functions.push(fname),
                    Err(err) => return unsure(err),
                }
            }
            Expr::Identifier(id) if id.quote_style.is_none() => {
                let lower = id.value.to_ascii_lowercase();
                if VALUE_FUNCTIONS.contains(&lower.as_str()) {
                    self.function(None, &lower);
                }
            }
            Expr::Extract { .. } => self.function(Some("pg_catalog"), "extract"),
            Expr::AtTimeZone { .. } => self.function(Some("pg_catalog"), "timezone"),
            Expr::Position { .. } => self.function(Some("pg_catalog"), "position"),
            Expr::Overlay { .. } => self.function(Some("pg_catalog"), "overlay"),
            Expr::IsNormalized { .. } => self.function(Some("pg_catalog"), "is_normalized"),
            Expr::Ceil { .. } => self.function(None, "ceil"),
            Expr::Floor { .. } => self.function(None, "floor"),
            Expr::Substring {
                special, shorthand, ..
            } => {
                if *shorthand {
                    self.function(None, "substr");
                } else if *special {
                    self.function(None, "substring");
                } else {
                    self.function(Some("pg_catalog"), "substring");
                }
            }
            Expr::Trim {
                trim_where,
                trim_characters,
                ..
            } => {
                if trim_characters.is_some() {
                    return unsure("TRIM form not in PostgreSQL");
                }
                let f = match trim_where {
                    Some(TrimWhereField::Leading) => "ltrim",
                    Some(TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                self.function(Some("pg_catalog"), f);
            }
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::CompoundFieldAccess { .. }
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::IsJson { .. }
            | Expr::InList { .. }
            | Expr::InSubquery { .. }
            | Expr::Between { .. }
            | Expr::BinaryOp { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::SimilarTo { .. }
            | Expr::AnyOp { .. }
            | Expr::AllOp { .. }
            | Expr::UnaryOp { .. }
            | Expr::Cast { .. }
            | Expr::Collate { .. }
            | Expr::Nested(_)
            | Expr::Value(_)
            | Expr::TypedString { .. }
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_)
            | Expr::GroupingSets(_)
            | Expr::Cube(_)
            | Expr::Rollup(_)
            | Expr::Tuple(_)
            | Expr::Array(_)
            | Expr::Interval(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..) => {}
            _ => return unsure("expression form not in PostgreSQL"),
        }
        ControlFlow::Continue(())
    }
}
