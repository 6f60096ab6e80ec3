//! The session's transaction as the server last reported it, and what the
//! open block did: what it wrote, whether it ran DDL, whether something in it
//! may have changed the session's state, and its isolation once asked.
//!
//! No I/O and no engine: the protocol tells it what went out and what came
//! back, and it answers what to invalidate and whether the cache may be used.

use crate::bypass::Bypass;
use crate::engine::{Source, WriteSet};
use crate::sql::TxCommand;
use crate::wire::TxStatus;

#[derive(Debug)]
pub struct Transaction {
    /// From the last ReadyForQuery; `None` before the first.
    status: Option<TxStatus>,
    /// Writes of the open transaction block, invalidated again when it ends.
    uncommitted: WriteSet,
    /// Whether the open transaction block runs at READ COMMITTED, as the
    /// server said; `None` until it is asked.
    read_committed: Option<bool>,
    /// Something that may change the session's state ran in the open block:
    /// when the block ends (or rolls back to a savepoint) the state is
    /// unknown again.
    dirty: bool,
    /// DDL ran in the open block: its COMMIT commits DDL.
    ddl: bool,
}

impl Default for Transaction {
    fn default() -> Transaction {
        Transaction {
            status: None,
            uncommitted: WriteSet::Nothing,
            read_committed: None,
            dirty: false,
            ddl: false,
        }
    }
}

impl Transaction {
    /// The status of the last ReadyForQuery; `None` before the first.
    pub fn status(&self) -> Option<TxStatus> {
        self.status
    }

    /// A ReadyForQuery said `status`. Returns whether it was the first.
    pub fn set_status(&mut self, status: Option<TxStatus>) -> bool {
        let first = self.status.is_none();
        self.status = status;
        first
    }

    fn in_block(&self) -> bool {
        self.status == Some(TxStatus::InTransaction)
    }

    /// Something sent may have changed the session's state: the block's
    /// isolation is asked again, and the state is forgotten when the block
    /// ends.
    pub fn state_may_have_changed(&mut self) {
        self.read_committed = None;
        self.dirty = true;
    }

    /// DDL (or something that may run DDL) went out.
    pub fn ran_ddl(&mut self) {
        self.ddl = true;
    }

    /// A transaction command went out. Returns whether the session's state
    /// must be forgotten: the block's SETs end with it, or with the rollback
    /// to a savepoint.
    pub fn on_command(&mut self, command: &TxCommand) -> bool {
        match command {
            // Even a BEGIN that names READ COMMITTED leaves the isolation
            // unknown: the probe at the block's first read is also what
            // takes the block's snapshot on the server, as the client's own
            // read would have (after it, a late SET TRANSACTION ISOLATION
            // fails as it does without the proxy).
            TxCommand::Savepoint | TxCommand::Release => false,
            TxCommand::RollbackToSavepoint => self.dirty,
            _ => {
                self.read_committed = None;
                self.dirty
            }
        }
    }

    /// Whether `command` may commit DDL.
    pub fn commits_ddl(&self, command: &TxCommand) -> bool {
        match command {
            TxCommand::Commit | TxCommand::PrepareTransaction => self.ddl,
            // A prepared transaction may hold DDL of another session.
            TxCommand::CommitPrepared => true,
            _ => false,
        }
    }

    /// The block's isolation is unknown (cheap first test before a probe).
    pub fn isolation_unknown(&self) -> bool {
        self.in_block() && self.read_committed.is_none()
    }

    /// A read in this block could be served once its isolation is known:
    /// the block wrote nothing and the isolation has not been asked.
    pub fn needs_isolation(&self) -> bool {
        self.isolation_unknown() && self.uncommitted.is_empty()
    }

    /// The server answered a state probe; `read_committed` is the session's
    /// isolation (the block's, inside one).
    pub fn probed_state(&mut self, read_committed: bool) {
        let in_block = self.in_block();
        self.read_committed = in_block.then_some(read_committed);
        if !in_block {
            self.dirty = false;
        }
    }

    /// The server answered an isolation probe.
    pub fn probed_isolation(&mut self, read_committed: bool) {
        if self.in_block() {
            self.read_committed = Some(read_committed);
        }
    }

    /// Why the transaction keeps the cache out, if it does.
    pub fn bypass(&self) -> Option<Bypass> {
        match self.status {
            Some(TxStatus::Idle) => None,
            Some(TxStatus::InTransaction) if !self.uncommitted.is_empty() => {
                Some(Bypass::TransactionWrote)
            }
            Some(TxStatus::InTransaction) => match self.read_committed {
                Some(true) => None,
                Some(false) => Some(Bypass::Isolation),
                None => Some(Bypass::StateUnknown),
            },
            Some(TxStatus::Failed) => Some(Bypass::FailedTransaction),
            None => Some(Bypass::Startup),
        }
    }

    /// A COMMIT (or PREPARE TRANSACTION, COMMIT PREPARED) completed: the
    /// block's writes, to invalidate now, and whether it ran DDL.
    pub fn committed(&mut self) -> (WriteSet, bool) {
        (
            std::mem::take(&mut self.uncommitted),
            std::mem::take(&mut self.ddl),
        )
    }

    /// A cycle ended with `writes` done (see `Cycle::effective_writes`), and
    /// the status is set. If the block is over (committed or rolled back),
    /// what it wrote, to invalidate again, and as what.
    pub fn cycle_ended(&mut self, writes: &WriteSet) -> Option<(WriteSet, Source)> {
        self.uncommitted.add(writes);
        if matches!(
            self.status,
            Some(TxStatus::InTransaction) | Some(TxStatus::Failed)
        ) {
            return None;
        }
        let source = if self.ddl { Source::Ddl } else { Source::Write };
        let writes = std::mem::take(&mut self.uncommitted);
        self.read_committed = None;
        self.ddl = false;
        Some((writes, source))
    }

    /// Writes of the open block, not yet committed.
    pub fn has_uncommitted(&self) -> bool {
        !self.uncommitted.is_empty()
    }

    /// The session ends: the open block's writes may still have happened.
    pub fn take_uncommitted(&mut self) -> WriteSet {
        std::mem::take(&mut self.uncommitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(tx: &mut Transaction, status: TxStatus) -> Option<(WriteSet, Source)> {
        tx.set_status(Some(status));
        tx.cycle_ended(&WriteSet::Nothing)
    }

    #[test]
    fn nothing_is_served_before_the_first_ready_for_query() {
        let mut tx = Transaction::default();
        assert_eq!(tx.bypass(), Some(Bypass::Startup));
        assert!(tx.set_status(Some(TxStatus::Idle)));
        assert!(!tx.set_status(Some(TxStatus::Idle)));
        assert_eq!(tx.bypass(), None);
    }

    #[test]
    fn a_block_is_served_only_at_read_committed_as_the_server_said() {
        let mut tx = Transaction::default();
        ready(&mut tx, TxStatus::InTransaction);
        assert_eq!(tx.bypass(), Some(Bypass::StateUnknown));
        assert!(tx.needs_isolation());
        tx.probed_isolation(false);
        assert_eq!(tx.bypass(), Some(Bypass::Isolation));
        tx.probed_isolation(true);
        assert_eq!(tx.bypass(), None);
        assert!(!tx.needs_isolation());
        // A new BEGIN-like command forgets it.
        tx.on_command(&TxCommand::Commit);
        assert!(tx.isolation_unknown());
        // Outside a block an isolation answer means nothing.
        ready(&mut tx, TxStatus::Idle);
        tx.probed_isolation(true);
        assert!(!tx.isolation_unknown());
        ready(&mut tx, TxStatus::InTransaction);
        assert!(tx.isolation_unknown());
    }

    #[test]
    fn a_block_that_wrote_is_not_served_and_its_writes_go_at_its_end() {
        let mut tx = Transaction::default();
        tx.set_status(Some(TxStatus::InTransaction));
        assert_eq!(tx.cycle_ended(&WriteSet::Everything), None);
        assert!(tx.has_uncommitted());
        tx.probed_isolation(true);
        assert_eq!(tx.bypass(), Some(Bypass::TransactionWrote));
        assert!(!tx.needs_isolation());
        tx.set_status(Some(TxStatus::Failed));
        assert_eq!(tx.cycle_ended(&WriteSet::Nothing), None);
        assert_eq!(tx.bypass(), Some(Bypass::FailedTransaction));
        let (writes, source) = ready(&mut tx, TxStatus::Idle).expect("the block ended");
        assert!(matches!(writes, WriteSet::Everything));
        assert_eq!(source, Source::Write);
        assert!(!tx.has_uncommitted());
        // Every idle ReadyForQuery ends "a block": nothing left to invalidate.
        let (writes, _) = ready(&mut tx, TxStatus::Idle).expect("idle");
        assert!(writes.is_empty());
    }

    #[test]
    fn ddl_in_a_block_is_committed_by_its_commit() {
        let mut tx = Transaction::default();
        ready(&mut tx, TxStatus::InTransaction);
        assert!(!tx.commits_ddl(&TxCommand::Commit));
        assert!(tx.commits_ddl(&TxCommand::CommitPrepared));
        tx.ran_ddl();
        assert!(tx.commits_ddl(&TxCommand::Commit));
        assert!(tx.commits_ddl(&TxCommand::PrepareTransaction));
        assert!(!tx.commits_ddl(&TxCommand::Rollback));
        tx.set_status(Some(TxStatus::InTransaction));
        tx.cycle_ended(&WriteSet::Everything);
        let (writes, ddl) = tx.committed();
        assert!(matches!(writes, WriteSet::Everything));
        assert!(ddl);
        assert!(!tx.committed().1, "taken once");
        // Not committed by COMMIT: the end of the block says DDL.
        tx.ran_ddl();
        let (_, source) = ready(&mut tx, TxStatus::Idle).expect("ended");
        assert_eq!(source, Source::Ddl);
        let (_, source) = ready(&mut tx, TxStatus::Idle).expect("ended");
        assert_eq!(source, Source::Write);
    }

    #[test]
    fn a_state_change_in_a_block_is_forgotten_with_the_block() {
        let mut tx = Transaction::default();
        ready(&mut tx, TxStatus::InTransaction);
        assert!(!tx.on_command(&TxCommand::RollbackToSavepoint));
        tx.state_may_have_changed();
        assert!(!tx.on_command(&TxCommand::Savepoint));
        assert!(tx.on_command(&TxCommand::RollbackToSavepoint));
        assert!(tx.on_command(&TxCommand::Rollback));
        // A state probe inside the block keeps it dirty; outside, clean.
        tx.probed_state(true);
        assert_eq!(tx.bypass(), None);
        assert!(tx.on_command(&TxCommand::Commit));
        ready(&mut tx, TxStatus::Idle);
        tx.probed_state(false);
        assert!(!tx.on_command(&TxCommand::Commit));
        assert!(!tx.isolation_unknown());
    }

    #[test]
    fn the_session_end_takes_the_open_writes() {
        let mut tx = Transaction::default();
        tx.set_status(Some(TxStatus::InTransaction));
        tx.cycle_ended(&WriteSet::Everything);
        assert!(matches!(tx.take_uncommitted(), WriteSet::Everything));
        assert!(!tx.has_uncommitted());
    }
}
