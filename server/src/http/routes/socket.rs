//! The two halves of a WebSocket as the code that pumps a command, a
//! connection or a file through one sees them: a whole socket's halves, or
//! one operation's share of the control socket (`control.rs`).

use axum::extract::ws::Message;

/// Where messages to the client go.
pub(super) trait Outbox: futures_util::Sink<Message> + Unpin {}
impl<T: futures_util::Sink<Message> + Unpin> Outbox for T {}

/// Where the client's messages come from.
pub(super) trait Inbox:
    futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin
{
}
impl<T: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin> Inbox for T {}
