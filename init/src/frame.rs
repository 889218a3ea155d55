//! Length-prefixed frames shared by both ends of the init socket.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload either side accepts; larger frames are a protocol error.
pub const MAX_FRAME: usize = 1 << 20;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Payload: the exit code as i32 little-endian (128+N for signal N).
    Exit = 3,
    StdinEof = 4,
    /// Payload: rows and cols as two u16 little-endian.
    Resize = 5,
    /// Payload: a signal number as i32 little-endian.
    Signal = 6,
    /// Payload: a JSON [`crate::Request`] or [`crate::Reply`].
    Control = 7,
}

impl Tag {
    fn from_u8(v: u8) -> Option<Tag> {
        Some(match v {
            0 => Tag::Stdin,
            1 => Tag::Stdout,
            2 => Tag::Stderr,
            3 => Tag::Exit,
            4 => Tag::StdinEof,
            5 => Tag::Resize,
            6 => Tag::Signal,
            7 => Tag::Control,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: Tag,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(tag: Tag, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            tag,
            payload: payload.into(),
        }
    }

    pub fn control<T: serde::Serialize>(msg: &T) -> Frame {
        let payload = serde_json::to_vec(msg).expect("protocol messages always serialize");
        Frame::new(Tag::Control, payload)
    }

    pub fn exit(code: i32) -> Frame {
        Frame::new(Tag::Exit, code.to_le_bytes().to_vec())
    }

    pub fn resize(rows: u16, cols: u16) -> Frame {
        let mut p = rows.to_le_bytes().to_vec();
        p.extend_from_slice(&cols.to_le_bytes());
        Frame::new(Tag::Resize, p)
    }

    pub fn signal(sig: i32) -> Frame {
        Frame::new(Tag::Signal, sig.to_le_bytes().to_vec())
    }

    /// The i32 carried by an `Exit` or `Signal` frame.
    pub fn as_i32(&self) -> Result<i32, FrameError> {
        let b: [u8; 4] = self
            .payload
            .as_slice()
            .try_into()
            .map_err(|_| FrameError::Malformed("expected a 4-byte integer"))?;
        Ok(i32::from_le_bytes(b))
    }

    /// The (rows, cols) carried by a `Resize` frame.
    pub fn as_size(&self) -> Result<(u16, u16), FrameError> {
        if self.payload.len() != 4 {
            return Err(FrameError::Malformed("expected rows and cols"));
        }
        let rows = u16::from_le_bytes([self.payload[0], self.payload[1]]);
        let cols = u16::from_le_bytes([self.payload[2], self.payload[3]]);
        Ok((rows, cols))
    }

    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, FrameError> {
        if self.tag != Tag::Control {
            return Err(FrameError::Malformed("expected a control frame"));
        }
        serde_json::from_slice(&self.payload).map_err(FrameError::Json)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o error on the init socket")]
    Io(#[from] std::io::Error),
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("malformed control message")]
    Json(#[source] serde_json::Error),
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..]).await?;
    let tag = Tag::from_u8(head[0]).ok_or(FrameError::UnknownTag(head[0]))?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame { tag, payload }))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> Result<(), FrameError> {
    if f.payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(f.payload.len()));
    }
    let mut buf = Vec::with_capacity(5 + f.payload.len());
    buf.push(f.tag as u8);
    buf.extend_from_slice(&(f.payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&f.payload);
    w.write_all(&buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let frames = vec![
            Frame::new(Tag::Stdout, b"hello".to_vec()),
            Frame::exit(137),
            Frame::resize(40, 120),
            Frame::new(Tag::StdinEof, vec![]),
        ];
        for f in &frames {
            write_frame(&mut a, f).await.unwrap();
        }
        drop(a);
        let mut got = vec![];
        while let Some(f) = read_frame(&mut b).await.unwrap() {
            got.push(f);
        }
        assert_eq!(got, frames);
        assert_eq!(got[1].as_i32().unwrap(), 137);
        assert_eq!(got[2].as_size().unwrap(), (40, 120));
    }

    #[tokio::test]
    async fn rejects_unknown_tags_and_oversized_frames() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[9, 0, 0, 0, 0]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::UnknownTag(9))
        ));
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[1, 0xff, 0xff, 0xff, 0x7f]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::TooLarge(_))
        ));
    }
}
