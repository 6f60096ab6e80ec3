//! The facts about one function, and object ids: below the snapshot, so the
//! code that computes them while loading (`node_tree.rs`, `hidden_calls.rs`)
//! does not depend on the snapshot it helps build.

/// A PostgreSQL object id.
pub type Oid = u32;

/// `pg_proc.provolatile`, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    pub(super) fn from_provolatile(v: u8) -> Volatility {
        match v {
            b'i' => Volatility::Immutable,
            b's' => Volatility::Stable,
            // 'v', and anything unknown, is the worst case.
            _ => Volatility::Volatile,
        }
    }
}

/// A function, or for a name lookup the worst of its visible overloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub oid: Oid,
    pub volatility: Volatility,
    /// In `pg_catalog` or `information_schema`: a volatile system function
    /// (now(), random(), nextval()) does not write tables the way a user's
    /// volatile function may.
    pub is_system: bool,
    pub schema: String,
    pub name: String,
}

impl FunctionInfo {
    /// May this function write to arbitrary tables? Only VOLATILE functions
    /// can (PostgreSQL runs STABLE and IMMUTABLE ones read-only), and system
    /// ones are known not to.
    pub(super) fn may_write(&self) -> bool {
        self.volatility == Volatility::Volatile && !self.is_system
    }
}
