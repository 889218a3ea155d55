//! The protocol spoken between the host (`vmhost`) and `sprite-init`, the
//! process that runs as PID 1 inside every sprite.
//!
//! The host binds a unix socket outside the sprite and hands the listening
//! descriptor to `sprite-init` as fd 3 when the sandbox starts; the sprite's
//! own processes never see that socket. Each request uses one connection:
//!
//! 1. The host sends a [`Tag::Control`] frame holding a JSON [`Request`].
//! 2. `sprite-init` answers with a [`Tag::Control`] frame holding a JSON [`Reply`].
//! 3. For [`Request::Exec`] and [`Request::Attach`] the connection then carries
//!    stream frames both ways until `sprite-init` sends [`Tag::Exit`] and closes.
//!
//! Every frame is `[tag: u8][length: u32 little-endian][payload]`. The stream
//! tags reuse the numbering of the public exec WebSocket (0 stdin, 1 stdout,
//! 2 stderr, 3 exit, 4 stdin EOF) so the server can translate frame for frame.

pub mod frame;
pub mod proto;

pub use frame::{read_frame, write_frame, Frame, FrameError, Tag, MAX_FRAME};
pub use proto::*;
