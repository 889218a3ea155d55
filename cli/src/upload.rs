//! Request bodies streamed from disk: an archive as it is, or a directory
//! archived on the fly (links kept as links, nothing followed), so a root
//! file system of any size goes up without a copy in memory or on disk.

use std::path::Path;

use anyhow::Context;

/// The body of `POST /v1/images` for `path`.
pub async fn archive(path: &Path) -> anyhow::Result<reqwest::Body> {
    let meta = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        return Ok(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::new(file),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(16);
    let dir = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut b = tar::Builder::new(Chunks(tx.clone()));
        b.follow_symlinks(false);
        // A failure ends the upload with an error, never with a shorter archive.
        if let Err(e) = b.append_dir_all(".", &dir).and_then(|()| b.finish()) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Writes go to the request body as chunks.
struct Chunks(tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>);

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
