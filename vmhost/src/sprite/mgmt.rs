//! The sprite's management socket, `/.sprite/run/api.sock` inside it. The
//! host binds it in the directory it mounts there; whoever holds the
//! listener (the server) answers what the sprite's processes ask, and the
//! socket itself is their credential.

use std::os::unix::fs::PermissionsExt;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixListener;

use super::Host;
use crate::error::{Error, Result};
use crate::SpriteName;

/// A byte stream both ways.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// One connection from a process inside the sprite to its management
/// socket.
pub type MgmtConnection = Box<dyn Duplex>;

/// The listening management socket of one sprite.
pub struct MgmtListener(Listening);

enum Listening {
    Here(UnixListener),
    /// On a host on another machine.
    Elsewhere(Box<dyn Accept>),
}

/// A management socket listened on elsewhere.
#[async_trait::async_trait]
pub(crate) trait Accept: Send {
    async fn accept(&mut self) -> Result<MgmtConnection>;
}

impl MgmtListener {
    pub(crate) fn elsewhere(listening: impl Accept + 'static) -> MgmtListener {
        MgmtListener(Listening::Elsewhere(Box::new(listening)))
    }

    /// The next connection from inside the sprite.
    pub async fn accept(&mut self) -> Result<MgmtConnection> {
        match &mut self.0 {
            Listening::Here(listener) => {
                let (stream, _) = listener
                    .accept()
                    .await
                    .map_err(|e| Error::io("the management socket cannot accept", e))?;
                Ok(Box::new(stream))
            }
            Listening::Elsewhere(listening) => listening.accept().await,
        }
    }
}

impl Host {
    /// Listens on sprite `name`'s management socket, in place of any
    /// earlier listener of it.
    pub async fn listen_mgmt(&self, name: &SpriteName) -> Result<MgmtListener> {
        self.load(name)?;
        let dir = self.mgmt_dir(name);
        let path = dir.join("api.sock");
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::path("cannot remove", &path, e)),
        }
        let listener =
            UnixListener::bind(&path).map_err(|e| Error::path("cannot bind", &path, e))?;
        // The sprite's root is an unprivileged uid on the host.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| Error::path("cannot open up", &path, e))?;
        Ok(MgmtListener(Listening::Here(listener)))
    }
}
