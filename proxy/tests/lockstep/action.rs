//! What one step sends: frontend messages as drivers send them, grouped into
//! exchanges that each end with the ReadyForQuery messages they are owed.

use std::fmt;

use crate::common::wire;

/// A function called by OID in a FunctionCall message. User functions have a
/// different OID in each database, so the runner resolves them per side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    SetConfig,
    SetTenant,
}

#[derive(Clone, Debug)]
pub enum Msg {
    Query(String),
    Parse {
        name: String,
        sql: String,
    },
    Bind {
        statement: String,
        params: Vec<Option<String>>,
    },
    DescribePortal,
    DescribeStatement(String),
    Execute,
    Close(String),
    Sync,
    Flush,
    Call {
        func: Func,
        args: Vec<Option<String>>,
    },
}

impl Msg {
    /// The frontend bytes; `oid` resolves a function for this side.
    pub fn encode(&self, oid: impl Fn(Func) -> u32) -> Vec<u8> {
        match self {
            Msg::Query(sql) => wire::query(sql),
            Msg::Parse { name, sql } => wire::parse(name, sql),
            Msg::Bind { statement, params } => wire::bind("", statement, params),
            Msg::DescribePortal => wire::describe_portal(""),
            Msg::DescribeStatement(name) => wire::describe_statement(name),
            Msg::Execute => wire::execute("", 0),
            Msg::Close(name) => wire::close_statement(name),
            Msg::Sync => wire::sync(),
            Msg::Flush => wire::flush(),
            Msg::Call { func, args } => wire::function_call(oid(*func), args),
        }
    }

    /// Each of these ends with exactly one ReadyForQuery.
    pub fn owes_ready(&self) -> bool {
        matches!(self, Msg::Query(_) | Msg::Sync | Msg::Call { .. })
    }
}

fn params(values: &[Option<String>]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| v.as_deref().map_or("NULL".into(), |v| format!("'{v}'")))
        .collect();
    shown.join(", ")
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Query(sql) => write!(f, "Query {sql:?}"),
            Msg::Parse { name, sql } => write!(f, "Parse {name:?} {sql:?}"),
            Msg::Bind {
                statement,
                params: p,
            } => write!(f, "Bind {statement:?} [{}]", params(p)),
            Msg::DescribePortal => write!(f, "Describe portal"),
            Msg::DescribeStatement(name) => write!(f, "Describe statement {name:?}"),
            Msg::Execute => write!(f, "Execute"),
            Msg::Close(name) => write!(f, "Close statement {name:?}"),
            Msg::Sync => write!(f, "Sync"),
            Msg::Flush => write!(f, "Flush"),
            Msg::Call { func, args } => write!(f, "FunctionCall {func:?}({})", params(args)),
        }
    }
}

/// One round trip: messages sent together, then every answer up to the last
/// ReadyForQuery they are owed. `Reconnect` replaces the session's pair of
/// connections with fresh logins. `Superuser` runs cluster-wide SQL (roles,
/// ALTER SYSTEM) once, straight on the server, so it reaches both sides.
#[derive(Clone, Debug)]
pub enum Exchange {
    Send(Vec<Msg>),
    Reconnect,
    Superuser(String),
}

impl Exchange {
    pub fn ready_owed(&self) -> usize {
        match self {
            Exchange::Send(msgs) => msgs.iter().filter(|m| m.owes_ready()).count(),
            Exchange::Reconnect => 1,
            Exchange::Superuser(_) => 0,
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exchange::Reconnect => write!(f, "reconnect"),
            Exchange::Superuser(sql) => write!(f, "superuser on the server: {sql:?}"),
            Exchange::Send(msgs) => {
                let shown: Vec<String> = msgs.iter().map(|m| m.to_string()).collect();
                write!(f, "{}", shown.join(" | "))
            }
        }
    }
}

/// A step of a program: a family name (for the transcript) and its exchanges.
#[derive(Clone, Debug)]
pub struct Action {
    pub family: &'static str,
    pub exchanges: Vec<Exchange>,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.exchanges.iter().map(|e| e.to_string()).collect();
        write!(f, "[{}] {}", self.family, shown.join(" ; then "))
    }
}

/// Builders used by the generator and the scripted scenarios.
pub fn text(value: impl ToString) -> Option<String> {
    Some(value.to_string())
}

impl Action {
    /// One simple Query (possibly several statements in it).
    pub fn simple(family: &'static str, sql: impl Into<String>) -> Action {
        Action {
            family,
            exchanges: vec![Exchange::Send(vec![Msg::Query(sql.into())])],
        }
    }

    /// Several simple Queries, each answered before the next is sent, with
    /// no other session in between.
    pub fn script(family: &'static str, sqls: &[&str]) -> Action {
        Action {
            family,
            exchanges: sqls
                .iter()
                .map(|sql| Exchange::Send(vec![Msg::Query(sql.to_string())]))
                .collect(),
        }
    }

    /// One extended batch as drivers send it for a one-off statement:
    /// unnamed Parse, Bind, Describe portal, Execute, Sync.
    pub fn extended(family: &'static str, sql: &str, params: Vec<Option<String>>) -> Action {
        Action::batch(family, "", sql, params)
    }

    /// Parse, Bind, Describe, Execute, Sync of statement `name`: what a
    /// driver sends the first time it runs a statement it prepares by name.
    pub fn batch(
        family: &'static str,
        name: &str,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Action {
        Action::messages(
            family,
            vec![
                Msg::Parse {
                    name: name.into(),
                    sql: sql.into(),
                },
                Msg::Bind {
                    statement: name.into(),
                    params,
                },
                Msg::DescribePortal,
                Msg::Execute,
                Msg::Sync,
            ],
        )
    }

    /// [`Action::batch`] after a Close of `name`, so the name can be reused.
    pub fn reparse(
        family: &'static str,
        name: &str,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Action {
        let mut action = Action::batch(family, name, sql, params);
        if let Some(Exchange::Send(msgs)) = action.exchanges.first_mut() {
            msgs.insert(0, Msg::Close(name.into()));
        }
        action
    }

    /// Parse of statement `name`, Describe of it, Sync: a driver preparing.
    pub fn prepare(family: &'static str, name: &str, sql: &str) -> Action {
        Action::messages(
            family,
            vec![
                Msg::Parse {
                    name: name.into(),
                    sql: sql.into(),
                },
                Msg::DescribeStatement(name.into()),
                Msg::Sync,
            ],
        )
    }

    /// Bind, Describe, Execute, Sync of an already prepared statement.
    pub fn run_prepared(family: &'static str, name: &str, params: Vec<Option<String>>) -> Action {
        Action::messages(
            family,
            vec![
                Msg::Bind {
                    statement: name.into(),
                    params,
                },
                Msg::DescribePortal,
                Msg::Execute,
                Msg::Sync,
            ],
        )
    }

    /// What psycopg 3's executemany() sends: one Parse, Bind/Describe/Execute
    /// per row, Sync, then a Flush that no ReadyForQuery answers.
    pub fn pipeline(family: &'static str, sql: &str, rows: Vec<Vec<Option<String>>>) -> Action {
        let mut msgs = vec![Msg::Parse {
            name: String::new(),
            sql: sql.into(),
        }];
        for params in rows {
            msgs.extend([
                Msg::Bind {
                    statement: String::new(),
                    params,
                },
                Msg::DescribePortal,
                Msg::Execute,
            ]);
        }
        msgs.extend([Msg::Sync, Msg::Flush]);
        Action::messages(family, msgs)
    }

    pub fn call(family: &'static str, func: Func, args: Vec<Option<String>>) -> Action {
        Action::messages(family, vec![Msg::Call { func, args }])
    }

    pub fn superuser(sql: &str) -> Action {
        Action {
            family: "superuser",
            exchanges: vec![Exchange::Superuser(sql.into())],
        }
    }

    pub fn reconnect() -> Action {
        Action {
            family: "reconnect",
            exchanges: vec![Exchange::Reconnect],
        }
    }

    pub fn messages(family: &'static str, msgs: Vec<Msg>) -> Action {
        Action {
            family,
            exchanges: vec![Exchange::Send(msgs)],
        }
    }
}
