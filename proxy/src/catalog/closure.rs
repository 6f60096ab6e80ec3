//! Which relations a read depends on, and which a write may change.
//!
//! Both err on the side of more: an extra relation costs a needless
//! invalidation, a missing one serves stale rows.

use std::collections::{HashSet, VecDeque};

use super::facts::{FunctionInfo, Oid};
use super::snapshot::{RelKind, Snapshot};

/// What a read of some relations depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadClosure {
    /// The relations read, directly or through views, partitions and
    /// inheritance children; deduplicated, the given ones first.
    pub relations: Vec<Oid>,
    /// The functions the views among them call, and the row-security
    /// policies of the tables among them; deduplicated. The proxy must not
    /// cache the read unless all are IMMUTABLE. SQL-syntax functions such as
    /// CURRENT_TIMESTAMP or CURRENT_USER appear as STABLE entries with oid 0.
    pub view_functions: Vec<FunctionInfo>,
    /// Given oids this snapshot does not know (dropped since they were
    /// resolved): the read cannot be cached.
    pub unknown: Vec<Oid>,
}

/// What a write to some relations may change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteClosure {
    /// Every relation whose contents a read could see change; deduplicated,
    /// the given ones first.
    pub relations: Vec<Oid>,
    /// Relations among the written ones whose triggers, rules or column
    /// defaults run user VOLATILE code, which may write anything: the proxy
    /// invalidates everything unless the policy says what they write.
    pub triggered: Vec<Oid>,
    /// Given (or referenced) oids this snapshot does not know: the proxy
    /// must invalidate everything.
    pub unknown: Vec<Oid>,
}

impl Snapshot {
    /// Relations whose data a read of `oids` depends on: the relations
    /// themselves; for a view, recursively the relations its query reads
    /// (the view is kept too); for a partitioned or inheritance parent,
    /// every descendant; for a table with row security, what its policies
    /// read. Materialized views are not expanded (they hold their own rows).
    pub fn read_closure(&self, oids: &[Oid]) -> ReadClosure {
        let mut out = ReadClosure::default();
        let mut seen = HashSet::new();
        let mut seen_functions = HashSet::new();
        let mut seen_builtins = HashSet::new();
        let mut work: VecDeque<Oid> = oids.iter().copied().collect();
        while let Some(oid) = work.pop_front() {
            if !seen.insert(oid) {
                continue;
            }
            out.relations.push(oid);
            let Some(rel) = self.relations.get(&oid) else {
                out.unknown.push(oid);
                continue;
            };
            // A SELECT on a parent reads its children (unless ONLY, which
            // reads less: the closure may be larger than needed).
            work.extend(self.children_of(oid));
            let mut deps = Vec::new();
            if rel.kind == RelKind::View {
                deps.extend(self.view_deps.get(&oid));
            }
            if rel.row_security {
                deps.extend(self.policy_deps.get(&oid));
            }
            for dep in deps {
                work.extend(dep.relations.iter().copied());
                for &f in &dep.functions {
                    if seen_functions.insert(f) {
                        out.view_functions.push(self.function_or_worst(f));
                    }
                }
                for builtin in &dep.builtins {
                    if seen_builtins.insert(builtin.name.as_str()) {
                        out.view_functions.push(builtin.clone());
                    }
                }
            }
        }
        out
    }

    /// Relations whose data may change when `oids` are written (INSERT,
    /// UPDATE, DELETE, MERGE, COPY FROM or TRUNCATE; the closure is the same
    /// for all of them):
    ///
    /// * the targets and all their descendants (a write to a parent reaches
    ///   its partitions or children), whose rows may change;
    /// * for every relation whose rows may change, its ancestors, whose
    ///   reads see those rows (but not the ancestors' other descendants);
    /// * for a view, the relations its query names (auto-updatable views,
    ///   INSTEAD rules); for rules other than `_RETURN`, every relation they
    ///   name;
    /// * FK children whose ON DELETE/UPDATE action is CASCADE, SET NULL or
    ///   SET DEFAULT, transitively; with `truncate_cascade`, every FK child.
    ///
    /// `triggered` lists the written relations with user triggers, and those
    /// whose rules or column defaults/checks call user VOLATILE functions.
    pub fn write_closure(&self, oids: &[Oid], truncate_cascade: bool) -> WriteClosure {
        let mut out = WriteClosure::default();
        // Relations whose rows may change, and relations listed in the
        // result (those plus their ancestors).
        let mut written = HashSet::new();
        let mut listed = HashSet::new();
        let mut work: VecDeque<Oid> = oids.iter().copied().collect();
        while let Some(oid) = work.pop_front() {
            if !written.insert(oid) {
                continue;
            }
            self.list_with_ancestors(oid, &mut listed, &mut out.relations);
            let Some(rel) = self.relations.get(&oid) else {
                out.unknown.push(oid);
                continue;
            };
            work.extend(self.children_of(oid));
            if rel.kind == RelKind::View {
                if let Some(deps) = self.view_deps.get(&oid) {
                    work.extend(deps.relations.iter().copied());
                }
            }
            let mut runs_user_code = rel.has_user_triggers;
            if let Some(deps) = self.rule_deps.get(&oid) {
                work.extend(deps.relations.iter().copied());
                runs_user_code |= self.any_may_write(&deps.functions);
            }
            if let Some(deps) = self.column_deps.get(&oid) {
                runs_user_code |= self.any_may_write(&deps.functions);
            }
            if runs_user_code {
                out.triggered.push(oid);
            }
            for edge in self.fk_children.get(&oid).into_iter().flatten() {
                if edge.cascades || truncate_cascade {
                    work.push_back(edge.child);
                }
            }
        }
        out
    }

    fn children_of(&self, oid: Oid) -> impl Iterator<Item = Oid> + '_ {
        self.children.get(&oid).into_iter().flatten().copied()
    }

    /// Adds `oid` and, transitively, its partition/inheritance parents.
    fn list_with_ancestors(&self, oid: Oid, listed: &mut HashSet<Oid>, relations: &mut Vec<Oid>) {
        let mut stack = vec![oid];
        while let Some(oid) = stack.pop() {
            if listed.insert(oid) {
                relations.push(oid);
                stack.extend(self.parents.get(&oid).into_iter().flatten().copied());
            }
        }
    }

    fn any_may_write(&self, functions: &[Oid]) -> bool {
        functions
            .iter()
            .any(|&f| self.function_or_worst(f).may_write())
    }
}
