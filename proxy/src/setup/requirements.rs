//! What the server must allow before setup installs anything: each missing
//! piece is named with the statement that fixes it.

use tokio_postgres::Client;

/// What setup found out about the server and the two roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The role setup is connected as.
    pub admin: String,
    pub admin_is_superuser: bool,
    /// The role the proxy logs in as (`--upstream`'s user).
    pub service: String,
    /// `None`: no such role on this server.
    pub service_can_replicate: Option<bool>,
    pub wal_level: String,
}

impl Facts {
    pub async fn read(client: &Client, service: &str) -> Result<Facts, tokio_postgres::Error> {
        let admin = client
            .query_one(
                "SELECT current_user::text, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await?;
        // A superuser may open replication connections without REPLICATION.
        let service_can_replicate = client
            .query_opt(
                "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = $1",
                &[&service],
            )
            .await?
            .map(|row| row.get(0));
        let wal_level = client
            .query_one("SELECT current_setting('wal_level')", &[])
            .await?
            .get(0);
        Ok(Facts {
            admin: admin.get(0),
            admin_is_superuser: admin.get(1),
            service: service.to_string(),
            service_can_replicate,
            wal_level,
        })
    }

    /// What is missing to install (everything, each with its fix). Removing
    /// needs only the superuser.
    pub fn missing(&self, removing: bool) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.admin_is_superuser {
            missing.push(format!(
                "role {:?} is not a superuser: creating or dropping event triggers needs one \
                 (run setup with --admin-url as a superuser, or ALTER ROLE {} SUPERUSER)",
                self.admin,
                quote_ident(&self.admin)
            ));
        }
        if removing {
            return missing;
        }
        match self.service_can_replicate {
            None => missing.push(format!(
                "the service account {:?} (the --upstream user) does not exist on this server",
                self.service
            )),
            Some(false) => missing.push(format!(
                "the service account {:?} (the --upstream user) lacks REPLICATION, which the \
                 change feed's replication connection needs: ALTER ROLE {} REPLICATION",
                self.service,
                quote_ident(&self.service)
            )),
            Some(true) => {}
        }
        if self.wal_level != "logical" {
            missing.push(format!(
                "wal_level is {:?}; logical decoding needs 'logical': \
                 ALTER SYSTEM SET wal_level = logical, then restart the server",
                self.wal_level
            ));
        }
        missing
    }
}

/// An identifier as SQL must spell it (always quoted: no keyword list to
/// keep up to date).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            admin: "admin".into(),
            admin_is_superuser: true,
            service: "svc".into(),
            service_can_replicate: Some(true),
            wal_level: "logical".into(),
        }
    }

    #[test]
    fn each_missing_piece_is_named_with_its_fix() {
        assert!(facts().missing(false).is_empty());
        let mut f = facts();
        f.admin_is_superuser = false;
        f.service = "My Svc".into();
        f.service_can_replicate = Some(false);
        f.wal_level = "replica".into();
        let missing = f.missing(false);
        assert_eq!(missing.len(), 3, "{missing:#?}");
        assert!(missing[0].contains("\"admin\" is not a superuser"));
        assert!(missing[1].contains("ALTER ROLE \"My Svc\" REPLICATION"));
        assert!(missing[2].contains("ALTER SYSTEM SET wal_level = logical"));
        assert_eq!(f.missing(true).len(), 1);
    }
}
