//! ReadyForQuery ('Z'): the server's transaction status, sent at the end of every
//! request cycle. The proxy's idea of the transaction state comes only from here.

/// The transaction status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InTransaction,
    /// 'E': in a failed transaction block; queries are refused until it ends.
    Failed,
}

impl TxStatus {
    /// The ReadyForQuery message announcing this status.
    pub fn message(self) -> &'static [u8] {
        match self {
            TxStatus::Idle => b"Z\0\0\0\x05I",
            TxStatus::InTransaction => b"Z\0\0\0\x05T",
            TxStatus::Failed => b"Z\0\0\0\x05E",
        }
    }

    /// Reads the status byte of a whole ReadyForQuery message (header included).
    pub fn from_message(message: &[u8]) -> Option<TxStatus> {
        if message.len() != 6 {
            return None;
        }
        match message[5] {
            b'I' => Some(TxStatus::Idle),
            b'T' => Some(TxStatus::InTransaction),
            b'E' => Some(TxStatus::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status() {
        assert_eq!(
            TxStatus::from_message(b"Z\0\0\0\x05T"),
            Some(TxStatus::InTransaction)
        );
        assert_eq!(TxStatus::from_message(b"Z\0\0\0\x05?"), None);
        assert_eq!(TxStatus::from_message(b"Z\0\0\0\x04"), None);
        for s in [TxStatus::Idle, TxStatus::InTransaction, TxStatus::Failed] {
            assert_eq!(TxStatus::from_message(s.message()), Some(s));
        }
    }
}
