//! The world both databases start from: roles (cluster-wide, created once per
//! test process) and, per database, the schemas, tables, functions and views
//! that the holes of issue 10 need.

use std::sync::OnceLock;

use testkit::Cluster;

use super::action::Func;
use crate::common::fresh_db;

/// The login of each logical session, by index. `app` is a NOINHERIT member
/// of `alice` and `bob`; `bob` has its own search_path; `rr` starts every
/// transaction at REPEATABLE READ and may `SET ROLE app`.
pub const LOGINS: [&str; 4] = ["app", "app", "bob", "rr"];

/// Roles whose defaults a scenario changes while their sessions are open;
/// no other test logs in as them.
pub const CAROL: &str = "carol";
pub const RR_RESET: &str = "rr_reset";

/// The logins' lock and statement timeouts make a step that would wait on
/// another session's lock fail the same way on both sides instead of
/// stalling the lockstep. They are set on the roles, not the databases, so
/// the proxy's own catalog connection never times out on a user's lock.
const ROLES: &str = "
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE app LOGIN NOINHERIT IN ROLE alice, bob;
CREATE ROLE rr LOGIN IN ROLE app;
ALTER ROLE bob SET search_path = b, public;
ALTER ROLE rr SET default_transaction_isolation = 'repeatable read';
CREATE ROLE carol LOGIN;
ALTER ROLE carol SET search_path = a, public;
CREATE ROLE rr_reset LOGIN;
ALTER ROLE rr_reset SET default_transaction_isolation = 'repeatable read';
ALTER ROLE app SET lock_timeout = '250ms';
ALTER ROLE bob SET lock_timeout = '250ms';
ALTER ROLE rr SET lock_timeout = '250ms';
ALTER ROLE app SET statement_timeout = '10s';
ALTER ROLE bob SET statement_timeout = '10s';
ALTER ROLE rr SET statement_timeout = '10s';
";

/// Run as the superuser in each database.
const SCHEMA: &str = "
CREATE SCHEMA a;
CREATE SCHEMA b;
GRANT USAGE ON SCHEMA a, b TO PUBLIC;
GRANT CREATE ON SCHEMA public TO app;
CREATE TABLE a.data (secret text);
INSERT INTO a.data VALUES ('a-secret');
CREATE TABLE b.data (secret text);
INSERT INTO b.data VALUES ('b-secret');
CREATE TABLE public.data (secret text);
INSERT INTO public.data VALUES ('public-secret');
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO t SELECT g, g * 10 FROM generate_series(1, 5) g;
CREATE TABLE totals (id int PRIMARY KEY, total int NOT NULL);
INSERT INTO totals VALUES (1, 150);
CREATE TABLE events (k int NOT NULL, v int NOT NULL);
CREATE VIEW t_view AS SELECT id, v FROM t WHERE v > 20;
CREATE TABLE alice_only (secret text);
INSERT INTO alice_only VALUES ('alice-secret');
ALTER TABLE alice_only OWNER TO alice;

CREATE FUNCTION totals_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE totals SET total = (SELECT coalesce(sum(v), 0) FROM t) WHERE id = 1;
  RETURN NULL;
END $$;
CREATE FUNCTION set_tenant(tenant text) RETURNS text LANGUAGE sql
  AS $$ SELECT set_config('search_path', tenant || ', public', false) $$;
CREATE PROCEDURE use_schema(s text) LANGUAGE plpgsql
  AS $$ BEGIN EXECUTE format('SET search_path = %I, public', s); END $$;
CREATE FUNCTION make_private() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS data (secret text);
  DELETE FROM pg_temp.data;
  INSERT INTO pg_temp.data VALUES ('temp-secret');
  RETURN 'private';
END $$;

-- Functions a query reaches without naming them, each reading `rates`.
CREATE TABLE rates (k int PRIMARY KEY, factor int NOT NULL);
INSERT INTO rates VALUES (1, 2);
CREATE FUNCTION scaled(x int, y int) RETURNS int LANGUAGE sql STABLE
  AS $$ SELECT x * (SELECT factor FROM rates WHERE k = 1) + y $$;
CREATE OPERATOR ## (LEFTARG = int, RIGHTARG = int, FUNCTION = scaled);
CREATE FUNCTION scaled_final(state int) RETURNS int LANGUAGE sql STABLE
  AS $$ SELECT state * (SELECT factor FROM rates WHERE k = 1) $$;
CREATE AGGREGATE scaled_sum(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0',
  FINALFUNC = scaled_final);
CREATE FUNCTION below_limit(x int) RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT x < (SELECT factor FROM rates WHERE k = 1) * 100 $$;
CREATE DOMAIN limited AS int CHECK (below_limit(VALUE));
CREATE TYPE scaled_int AS (v int);
CREATE FUNCTION to_scaled(x int) RETURNS scaled_int LANGUAGE sql STABLE
  AS $$ SELECT ROW(x * (SELECT factor FROM rates WHERE k = 1))::scaled_int $$;
CREATE CAST (int AS scaled_int) WITH FUNCTION to_scaled(int);
CREATE SEQUENCE tickets;
CREATE FUNCTION ticket(n bigint DEFAULT nextval('tickets')) RETURNS bigint
  LANGUAGE sql IMMUTABLE AS $$ SELECT n $$;
ALTER TABLE rates OWNER TO app;
ALTER SEQUENCE tickets OWNER TO app;
GRANT SELECT, UPDATE ON rates TO bob, rr;
GRANT USAGE ON SEQUENCE tickets TO PUBLIC;

ALTER TABLE a.data OWNER TO app;
ALTER TABLE b.data OWNER TO app;
ALTER TABLE public.data OWNER TO app;
ALTER TABLE t OWNER TO app;
ALTER TABLE totals OWNER TO app;
ALTER TABLE events OWNER TO app;
ALTER VIEW t_view OWNER TO app;
ALTER FUNCTION totals_refresh() OWNER TO app;
ALTER FUNCTION set_tenant(text) OWNER TO app;
ALTER PROCEDURE use_schema(text) OWNER TO app;
ALTER FUNCTION make_private() OWNER TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON a.data, b.data, public.data, t, totals, events, t_view
  TO bob, rr, carol, rr_reset;
";

/// One side's database and the OIDs its FunctionCall messages need.
#[derive(Clone, Debug)]
pub struct Database {
    pub name: String,
    pub set_config: u32,
    pub set_tenant: u32,
}

impl Database {
    pub fn oid(&self, func: Func) -> u32 {
        match func {
            Func::SetConfig => self.set_config,
            Func::SetTenant => self.set_tenant,
        }
    }
}

/// Two identical databases named after `name`: `<name>_direct` is used
/// straight, `<name>_proxy` only through the proxy.
pub fn create(cluster: &Cluster, name: &str) -> (Database, Database) {
    create_roles(cluster);
    let direct = database(cluster, &format!("{name}_direct"));
    let proxied = database(cluster, &format!("{name}_proxy"));
    (direct, proxied)
}

fn create_roles(cluster: &Cluster) {
    static ROLES_MADE: OnceLock<()> = OnceLock::new();
    ROLES_MADE.get_or_init(|| {
        cluster
            .psql("postgres", ROLES)
            .expect("create the differential roles");
    });
}

fn database(cluster: &Cluster, name: &str) -> Database {
    let db = fresh_db(cluster, name);
    cluster.psql(&db, SCHEMA).expect("create the universe");
    let oid = |function: &str| -> u32 {
        let out = cluster
            .psql(&db, &format!("SELECT '{function}'::regprocedure::oid"))
            .expect("function oid");
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("oid of {function}: {out:?}: {e}"))
    };
    Database {
        set_config: oid("set_config(text, text, boolean)"),
        set_tenant: oid("set_tenant(text)"),
        name: db,
    }
}
