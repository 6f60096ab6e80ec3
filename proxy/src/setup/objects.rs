//! What `pgcache setup` installs in a database, and the statements that
//! bring a database from what it has to what it should have (or back).
//!
//! Two event triggers (`ddl_command_end`, `sql_drop`) call two functions in
//! a schema of pgcache's own. Each function emits one *transactional*
//! logical decoding message with the prefix `pgcache`: it is written to WAL
//! inside the DDL's own transaction, so it is decoded exactly at the DDL's
//! commit, in commit order with every other change, and never if the DDL
//! rolls back. The feed reloads the catalog there (see `feed/ddl.rs`).
//!
//! The functions must never change what a user's statement does:
//! - `SET search_path = pg_catalog`: no object of the user's can be picked up
//!   instead of a system one;
//! - `SECURITY DEFINER` (owned by the superuser who ran setup): DDL by a role
//!   that may not call `pg_logical_emit_message` is announced all the same;
//! - every error is caught (`wal_level` lowered since setup, anything else):
//!   the user's DDL goes on; only `query_canceled` is not caught, which is
//!   the user's own cancel.
//!
//! DDL on temporary objects is not announced: the proxy never caches them,
//! and applications that create temporary tables per request would
//! otherwise empty the cache at each one.

/// The schema holding the functions. Nothing else goes in it.
pub const SCHEMA: &str = "pgcache";

/// Set on the schema: a schema named `pgcache` without it is someone
/// else's, and setup leaves it alone.
pub const SCHEMA_COMMENT: &str = "pgcache setup: DDL announcements for the change feed";

/// An event trigger and the function it calls.
pub struct Trigger {
    pub name: &'static str,
    pub event: &'static str,
    pub function: &'static str,
    /// The function's body (between the dollar quotes).
    pub body: &'static str,
}

pub const TRIGGERS: [Trigger; 2] = [
    Trigger {
        name: "pgcache_ddl_command_end",
        event: "ddl_command_end",
        function: "announce_ddl",
        body: DDL_BODY,
    },
    Trigger {
        name: "pgcache_sql_drop",
        event: "sql_drop",
        function: "announce_drop",
        body: DROP_BODY,
    },
];

// The content: {"event": ..., "tag": ..., "objects": [...], "more": n}, at
// most 50 objects (`more` counts those left out): a migration touching
// thousands of objects still writes a small message. The feed treats any
// DDL message as "everything changed"; the list is for people reading the
// stream, and for a finer invalidation later. A NULL content means only
// temporary objects were touched (or a DROP, which sql_drop announces).
const DDL_BODY: &str = r#"
DECLARE
  content text;
BEGIN
  BEGIN
    SELECT CASE WHEN (count(*) = 0 AND tg_tag LIKE 'DROP %')
                  OR (count(*) > 0 AND bool_and(coalesce(c.schema_name LIKE 'pg\_temp%', false)))
                THEN NULL
                ELSE json_build_object(
                  'event', 'ddl',
                  'tag', tg_tag,
                  'objects', (SELECT coalesce(json_agg(json_build_object(
                                'type', o.object_type, 'oid', o.objid,
                                'identity', left(o.object_identity, 300))), '[]')
                              FROM (SELECT * FROM pg_event_trigger_ddl_commands() LIMIT 50) AS o),
                  'more', greatest(count(*) - 50, 0))::text
           END
      INTO content
      FROM pg_event_trigger_ddl_commands() AS c;
  EXCEPTION WHEN OTHERS THEN
    content := json_build_object('event', 'ddl', 'tag', tg_tag)::text;
  END;
  IF content IS NOT NULL THEN
    PERFORM pg_logical_emit_message(true, 'pgcache', content);
  END IF;
EXCEPTION WHEN OTHERS THEN
  -- Never make the user's DDL fail.
  NULL;
END;
"#;

const DROP_BODY: &str = r#"
DECLARE
  content text;
BEGIN
  BEGIN
    SELECT CASE WHEN count(*) = 0 OR bool_and(d.is_temporary)
                THEN NULL
                ELSE json_build_object(
                  'event', 'drop',
                  'tag', tg_tag,
                  'objects', (SELECT coalesce(json_agg(json_build_object(
                                'type', o.object_type, 'oid', o.objid,
                                'identity', left(o.object_identity, 300))), '[]')
                              FROM (SELECT * FROM pg_event_trigger_dropped_objects() LIMIT 50) AS o),
                  'more', greatest(count(*) - 50, 0))::text
           END
      INTO content
      FROM pg_event_trigger_dropped_objects() AS d;
  EXCEPTION WHEN OTHERS THEN
    content := json_build_object('event', 'drop', 'tag', tg_tag)::text;
  END;
  IF content IS NOT NULL THEN
    PERFORM pg_logical_emit_message(true, 'pgcache', content);
  END IF;
EXCEPTION WHEN OTHERS THEN
  -- Never make the user's DDL fail.
  NULL;
END;
"#;

/// The settings every function is created with (as `pg_proc.proconfig`
/// shows them): compared to tell an up-to-date function from an old one.
pub const FUNCTION_CONFIG: &str = "search_path=pg_catalog";

/// What a database has of pgcache's objects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Installed {
    /// `None`: no schema named `pgcache`; `Some(false)`: one that is not
    /// pgcache's (no marker comment).
    pub schema_is_ours: Option<bool>,
    /// Per function of [`TRIGGERS`], in order: absent, or its body and
    /// settings and whether it is SECURITY DEFINER.
    pub functions: Vec<Option<FunctionState>>,
    /// Per event trigger of [`TRIGGERS`], in order: absent, or its event,
    /// the function it calls (`schema.name`) and `evtenabled`.
    pub triggers: Vec<Option<TriggerState>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub body: String,
    pub config: Vec<String>,
    pub security_definer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerState {
    pub event: String,
    pub function: String,
    pub enabled: String,
}

/// Why a database cannot be set up as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict(pub String);

fn create_function(trigger: &Trigger) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {SCHEMA}.{}() RETURNS event_trigger LANGUAGE plpgsql \
         SECURITY DEFINER SET search_path = pg_catalog AS $pgcache${}$pgcache$",
        trigger.function, trigger.body
    )
}

fn create_trigger(trigger: &Trigger) -> String {
    format!(
        "CREATE EVENT TRIGGER {} ON {} EXECUTE FUNCTION {SCHEMA}.{}()",
        trigger.name, trigger.event, trigger.function
    )
}

impl Trigger {
    fn is_current(&self, state: &FunctionState) -> bool {
        state.body == self.body
            && state.security_definer
            && state.config == [FUNCTION_CONFIG.to_string()]
    }

    fn calls_ours(&self, state: &TriggerState) -> bool {
        state.event == self.event && state.function == format!("{SCHEMA}.{}", self.function)
    }
}

/// The statements that install (or bring up to date) what is missing.
/// Empty when the database is set up already.
pub fn install_plan(installed: &Installed) -> Result<Vec<String>, Conflict> {
    let mut plan = Vec::new();
    match installed.schema_is_ours {
        None => {
            plan.push(format!("CREATE SCHEMA {SCHEMA}"));
            plan.push(format!("REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC"));
            plan.push(format!(
                "COMMENT ON SCHEMA {SCHEMA} IS '{}'",
                SCHEMA_COMMENT.replace('\'', "''")
            ));
        }
        Some(false) => {
            return Err(Conflict(format!(
                "a schema named {SCHEMA:?} exists and was not made by pgcache setup \
                 (its comment is not pgcache's); rename or drop it first"
            )))
        }
        Some(true) => {}
    }
    for (i, trigger) in TRIGGERS.iter().enumerate() {
        let function = installed.functions.get(i).cloned().flatten();
        if !function.is_some_and(|f| trigger.is_current(&f)) {
            plan.push(create_function(trigger));
        }
    }
    for (i, trigger) in TRIGGERS.iter().enumerate() {
        match installed.triggers.get(i).cloned().flatten() {
            None => plan.push(create_trigger(trigger)),
            Some(state) if !trigger.calls_ours(&state) => {
                plan.push(format!("DROP EVENT TRIGGER {}", trigger.name));
                plan.push(create_trigger(trigger));
            }
            // 'O': fires in the default session_replication_role ("origin");
            // 'D' is disabled. 'A' and 'R' fire too, and are the admin's choice.
            Some(state) if state.enabled == "D" => {
                plan.push(format!("ALTER EVENT TRIGGER {} ENABLE", trigger.name));
            }
            Some(_) => {}
        }
    }
    Ok(plan)
}

/// The statements that remove everything setup installed. Empty when there
/// is nothing of it.
pub fn remove_plan(installed: &Installed) -> Vec<String> {
    let mut plan = Vec::new();
    // Triggers first: with them gone, dropping the functions fires nothing.
    for (i, trigger) in TRIGGERS.iter().enumerate() {
        if installed.triggers.get(i).is_some_and(Option::is_some) {
            plan.push(format!("DROP EVENT TRIGGER {}", trigger.name));
        }
    }
    if installed.schema_is_ours == Some(true) {
        for (i, trigger) in TRIGGERS.iter().enumerate() {
            if installed.functions.get(i).is_some_and(Option::is_some) {
                plan.push(format!("DROP FUNCTION {SCHEMA}.{}()", trigger.function));
            }
        }
        // RESTRICT (the default): anything someone else put in it stays,
        // and the drop fails saying so.
        plan.push(format!("DROP SCHEMA {SCHEMA}"));
    }
    plan
}

/// Reads what `client`'s database has of pgcache's objects.
pub async fn inspect(client: &tokio_postgres::Client) -> Result<Installed, tokio_postgres::Error> {
    let schema = client
        .query_opt(
            "SELECT coalesce(obj_description(n.oid, 'pg_namespace'), '') FROM pg_namespace n \
             WHERE n.nspname = $1",
            &[&SCHEMA],
        )
        .await?;
    let schema_is_ours = schema.map(|row| row.get::<_, String>(0) == SCHEMA_COMMENT);
    let mut installed = Installed {
        schema_is_ours,
        ..Installed::default()
    };
    for trigger in &TRIGGERS {
        let function = client
            .query_opt(
                "SELECT p.prosrc, coalesce(p.proconfig, '{}'), p.prosecdef FROM pg_proc p \
                 JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0",
                &[&SCHEMA, &trigger.function],
            )
            .await?
            .map(|row| FunctionState {
                body: row.get(0),
                config: row.get(1),
                security_definer: row.get(2),
            });
        installed.functions.push(function);
        let state = client
            .query_opt(
                "SELECT e.evtevent::text, n.nspname || '.' || p.proname, e.evtenabled::text \
                 FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid \
                 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE e.evtname = $1",
                &[&trigger.name],
            )
            .await?
            .map(|row| TriggerState {
                event: row.get(0),
                function: row.get(1),
                enabled: row.get(2),
            });
        installed.triggers.push(state);
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> Installed {
        Installed {
            schema_is_ours: Some(true),
            functions: TRIGGERS
                .iter()
                .map(|t| {
                    Some(FunctionState {
                        body: t.body.to_string(),
                        config: vec![FUNCTION_CONFIG.to_string()],
                        security_definer: true,
                    })
                })
                .collect(),
            triggers: TRIGGERS
                .iter()
                .map(|t| {
                    Some(TriggerState {
                        event: t.event.to_string(),
                        function: format!("{SCHEMA}.{}", t.function),
                        enabled: "O".to_string(),
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn an_empty_database_gets_everything_and_a_complete_one_nothing() {
        let plan = install_plan(&Installed::default()).unwrap();
        assert_eq!(plan.len(), 3 + 2 + 2, "{plan:#?}");
        assert!(plan[0].starts_with("CREATE SCHEMA"));
        assert!(plan[6].starts_with("CREATE EVENT TRIGGER pgcache_sql_drop ON sql_drop"));
        assert!(install_plan(&complete()).unwrap().is_empty());
        assert!(remove_plan(&Installed::default()).is_empty());
        assert_eq!(remove_plan(&complete()).len(), 5);
    }

    #[test]
    fn stale_or_disabled_parts_are_brought_up_to_date() {
        let mut installed = complete();
        installed.functions[0].as_mut().unwrap().body = "old".into();
        installed.triggers[1].as_mut().unwrap().enabled = "D".into();
        let plan = install_plan(&installed).unwrap();
        assert_eq!(plan.len(), 2, "{plan:#?}");
        assert!(plan[0].starts_with("CREATE OR REPLACE FUNCTION pgcache.announce_ddl()"));
        assert_eq!(plan[1], "ALTER EVENT TRIGGER pgcache_sql_drop ENABLE");
    }

    #[test]
    fn a_schema_of_someone_else_is_left_alone() {
        let installed = Installed {
            schema_is_ours: Some(false),
            ..Installed::default()
        };
        assert!(install_plan(&installed).is_err());
        assert!(remove_plan(&installed).is_empty());
    }

    /// How many objects one message names at most.
    const MAX_OBJECTS: u32 = 50;

    #[test]
    fn messages_stay_small() {
        for trigger in &TRIGGERS {
            assert!(trigger.body.contains(&format!("LIMIT {MAX_OBJECTS}")));
            assert!(trigger
                .body
                .contains("pg_logical_emit_message(true, 'pgcache'"));
        }
    }
}
