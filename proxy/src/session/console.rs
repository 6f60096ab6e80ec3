//! A session of the admin console, once logged in: the proxy answers its
//! simple queries itself (`observe::console`) and relays nothing but the
//! final Terminate, which ends the server session it logged in with.

use bytes::BytesMut;

use crate::shared::Shared;
use crate::wire::{frontend, query, ErrorResponse, SqlState, TxStatus};

/// Answers one console message. Returns true when the client terminated.
pub async fn on_message(
    shared: &Shared,
    tag: u8,
    message: &[u8],
    server: &mut BytesMut,
    client: &mut BytesMut,
) -> bool {
    match tag {
        frontend::QUERY => {
            let text = query::text(message).unwrap_or_default();
            crate::observe::console::answer(shared, text, client).await;
            client.extend_from_slice(TxStatus::Idle.message());
        }
        frontend::SYNC => {
            client.extend_from_slice(
                &ErrorResponse::error(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "the pgcache admin console speaks the simple query protocol only",
                )
                .encode(),
            );
            client.extend_from_slice(TxStatus::Idle.message());
        }
        frontend::TERMINATE => {
            server.extend_from_slice(message);
            return true;
        }
        _ => {}
    }
    false
}
