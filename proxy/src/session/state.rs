//! What the proxy knows about a session, learned from the messages it relays.

use std::collections::HashMap;

use crate::wire::{parameter_status, TxStatus};

#[derive(Debug, Default)]
pub struct SessionState {
    /// From the last ReadyForQuery; `None` until the first one.
    pub tx_status: Option<TxStatus>,
    /// AuthenticationOk has been relayed.
    pub authenticated: bool,
    /// The client sent Terminate.
    pub terminated: bool,
    /// The server sent a FATAL (or PANIC) error; it closes the connection next.
    pub server_said_fatal: bool,
    /// The server process id, from BackendKeyData (for logs).
    pub backend_pid: Option<u32>,
    /// Settings the server reported with ParameterStatus.
    pub parameters: HashMap<String, String>,
}

impl SessionState {
    pub fn on_ready_for_query(&mut self, message: &[u8]) {
        self.tx_status = TxStatus::from_message(message);
    }

    pub fn on_parameter_status(&mut self, message: &[u8]) {
        if let Some((name, value)) = parameter_status::parse(message) {
            self.parameters.insert(name.to_string(), value.to_string());
        }
    }

    pub fn on_backend_key_data(&mut self, message: &[u8]) {
        if let Some(pid) = message.get(5..9) {
            self.backend_pid = Some(u32::from_be_bytes([pid[0], pid[1], pid[2], pid[3]]));
        }
    }

    pub fn on_authentication(&mut self, message: &[u8]) {
        // AuthenticationOk is the only request with code 0.
        if message.get(5..9) == Some(&[0, 0, 0, 0]) {
            self.authenticated = true;
        }
    }
}
