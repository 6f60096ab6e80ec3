//! Name lookup as PostgreSQL does it for a session with a given search_path.

use super::facts::FunctionInfo;
use super::names::truncate_identifier;
use super::names::{FuncName, RelName};
use super::snapshot::{Relation, Snapshot};

/// The session's own temporary schema. Never resolved here: what it holds is
/// private to one session, and the proxy does not cache for sessions with
/// temporary objects.
fn is_session_temp(schema: &str) -> bool {
    schema == "pg_temp"
}

impl Snapshot {
    /// The relation `name` means in a session whose search_path is
    /// `search_path` (already split, entries unquoted; `"$user"` stands for
    /// `user`, the current role). `pg_catalog` is searched first unless the
    /// path lists it; `pg_temp` is never resolved; schemas that do not exist
    /// are skipped.
    ///
    /// PostgreSQL also skips schemas the role has no USAGE on. The snapshot
    /// does not evaluate role membership, so when the first match is in a
    /// schema the role may not be able to use (not PUBLIC-usable, not owned
    /// by the role, role not superuser) and a later schema also has the name,
    /// the answer is `None` rather than a guess.
    pub fn resolve(&self, name: &RelName, search_path: &[String], user: &str) -> Option<&Relation> {
        let rel_name = truncate_identifier(&name.name);
        if let Some(schema) = &name.schema {
            let schema = truncate_identifier(schema);
            if is_session_temp(schema) {
                return None;
            }
            let oid = self.by_name.get(schema)?.get(rel_name)?;
            return self.relations.get(oid);
        }
        let mut hits = self
            .effective_path(search_path, user)
            .into_iter()
            .filter_map(|schema| {
                let oid = self.by_name.get(schema)?.get(rel_name)?;
                Some((schema, *oid))
            });
        let (schema, oid) = hits.next()?;
        if !self.surely_usable(schema, user) && hits.next().is_some() {
            return None;
        }
        self.relations.get(&oid)
    }

    /// Every function of this name visible through the search_path
    /// (`pg_catalog` first unless listed), reduced to the worst case: the
    /// analyzer does not resolve argument types, so any overload could be
    /// the one called. The answer is the most volatile overload, preferring a
    /// user one among equals, so `is_system` is true only if no user function
    /// of that volatility is visible. `None` if no function has the name.
    pub fn function_volatility(
        &self,
        name: &FuncName,
        search_path: &[String],
        user: &str,
    ) -> Option<FunctionInfo> {
        let func_name = truncate_identifier(&name.name);
        let candidates = self.functions_by_name.get(func_name)?;
        let schemas: Vec<&str> = match &name.schema {
            Some(schema) => {
                let schema = truncate_identifier(schema);
                if is_session_temp(schema) {
                    return None;
                }
                vec![schema]
            }
            None => self.effective_path(search_path, user),
        };
        let mut worst: Option<&FunctionInfo> = None;
        for schema in schemas {
            for info in candidates
                .iter()
                .filter_map(|oid| self.functions.get(oid))
                .filter(|info| info.schema == schema)
            {
                let rank = |f: &FunctionInfo| (f.volatility, !f.is_system);
                if worst.is_none_or(|w| rank(info) > rank(w)) {
                    worst = Some(info);
                }
            }
        }
        worst.cloned()
    }

    /// The schemas an unqualified name is looked up in, in order: existing
    /// schemas only, duplicates and `pg_temp` dropped, `pg_catalog` in front
    /// unless the path places it.
    pub(super) fn effective_path<'a>(
        &'a self,
        search_path: &'a [String],
        user: &'a str,
    ) -> Vec<&'a str> {
        let mut path: Vec<&'a str> = Vec::with_capacity(search_path.len() + 1);
        for entry in search_path {
            let schema = if entry == "$user" {
                user
            } else {
                entry.as_str()
            };
            let schema = truncate_identifier(schema);
            if is_session_temp(schema)
                || path.contains(&schema)
                || !self.schemas.contains_key(schema)
            {
                continue;
            }
            path.push(schema);
        }
        if !path.contains(&"pg_catalog") {
            path.insert(0, "pg_catalog");
        }
        path
    }

    /// Can `user` certainly use (search) `schema`? False means "not known",
    /// not "no".
    fn surely_usable(&self, schema: &str, user: &str) -> bool {
        if self.superusers.contains(user) {
            return true;
        }
        self.schemas
            .get(schema)
            .is_some_and(|s| s.public_usage || s.owner == user)
    }
}
