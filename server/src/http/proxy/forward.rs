//! The direct path of sprite URLs. A plain HTTP/1.1 request to a sprite's
//! host (a body of known length already read, no upgrade, no `Expect`) is
//! forwarded by reading its head, rewriting it as the hyper path does,
//! and relaying the response with its framing checked: no hyper server and
//! client in between, which for a small request cost more CPU than the
//! relaying itself (measured: 22 us of user time per request against 10).
//!
//! Anything else hands the connection over, with what was read of the
//! request and nothing lost, to the app (hyper, then
//! [`super::SpriteHosts`]) for the rest of its life: the app's own host, an
//! upgrade, a chunked or large upload, and every refusal, whose page the
//! app renders.

use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue, Method};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use vmhost::Connection;

use super::{
    authorize, forwarded_headers, open, resolve, sprite_label, wake, Forwarding, Route, AUTH_PATH,
};
use crate::AppState;

/// The longest request or response head read here; a longer request goes
/// to the app, which refuses it.
const MAX_HEAD: usize = 64 << 10;
/// The largest request body forwarded here, read whole before it goes.
const MAX_BODY: u64 = 64 << 10;
/// Headers in one head.
const MAX_HEADERS: usize = 100;
/// Read size for bodies.
const CHUNK: usize = 64 << 10;
/// The least free space a head is read into (a `BytesMut` with none reads
/// 64 bytes at a time).
const ROOM: usize = 4 << 10;
/// Buffer space a connection keeps between requests: an idle browser
/// connection holds this much, not the most a request ever needed.
const KEPT: usize = 8 << 10;

/// A client connection for the app to serve: the bytes read from it and
/// not yet used come first.
pub struct Handoff {
    unread: Bytes,
    stream: TcpStream,
}

/// A connection on its way from one runtime to another (from a direct
/// thread to the app's): the socket, in no runtime, and its unread bytes.
pub struct Detached {
    unread: Bytes,
    stream: std::net::TcpStream,
}

impl Detached {
    /// The connection, in the runtime of the calling thread.
    pub fn attach(self) -> std::io::Result<Handoff> {
        Ok(Handoff {
            unread: self.unread,
            stream: TcpStream::from_std(self.stream)?,
        })
    }
}

/// Serves `client`'s requests for as long as they are plain requests to
/// sprites. The connection, when a request is not, for the app to serve;
/// nothing when it has ended. Between requests `closing` ends it.
pub async fn serve(
    state: &AppState,
    mut client: TcpStream,
    addr: SocketAddr,
    closing: &CancellationToken,
) -> Option<Handoff> {
    let mut inbuf = BytesMut::with_capacity(KEPT);
    let mut relay = Relay::default();
    loop {
        if inbuf.is_empty() {
            inbuf.reserve(ROOM);
            tokio::select! {
                read = client.read_buf(&mut inbuf) => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
                _ = closing.cancelled() => return None,
            }
        }
        let request = loop {
            match parse_request(&inbuf) {
                Ok(Some(request)) if request.wanted() <= inbuf.len() => break request,
                Ok(_) if inbuf.len() < MAX_HEAD + MAX_BODY as usize => {
                    inbuf.reserve(ROOM);
                    match client.read_buf(&mut inbuf).await {
                        Ok(0) | Err(_) => return None,
                        Ok(_) => {}
                    }
                }
                _ => return Some(Handoff::new(client, inbuf)),
            }
        };
        let Some(admitted) = admit(state, &request).await else {
            return Some(Handoff::new(client, inbuf));
        };
        match relay
            .one(state, &mut client, addr, request, admitted, &inbuf)
            .await
        {
            Outcome::Done { used, keep } => {
                inbuf.advance(used);
                if inbuf.is_empty() && inbuf.capacity() > KEPT {
                    inbuf = BytesMut::with_capacity(KEPT);
                }
                if !keep {
                    let _ = client.shutdown().await;
                    return None;
                }
            }
            Outcome::Refused => return Some(Handoff::new(client, inbuf)),
            Outcome::Ended => return None,
        }
    }
}

/// A request head, parsed, with the length of its body.
struct Request {
    parts: Parts,
    head_len: usize,
    body_len: usize,
}

impl Request {
    /// The bytes the request takes, head and body.
    fn wanted(&self) -> usize {
        self.head_len + self.body_len
    }
}

/// A request this path does not take: malformed, or not plain.
struct NotPlain;

/// Reads a request head from `buf`, nothing while it is partial. A request
/// of another version, an upgrade, an `Expect`, a chunked or too large
/// body, a target that is not a path, or not exactly one `Host` is
/// [`NotPlain`].
fn parse_request(buf: &[u8]) -> Result<Option<Request>, NotPlain> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(NotPlain),
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Err(NotPlain);
    };
    if !path.starts_with('/') || path.starts_with(AUTH_PATH) {
        return Err(NotPlain);
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Err(NotPlain);
    };
    if method == Method::CONNECT {
        return Err(NotPlain);
    }
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Err(NotPlain);
        };
        map.append(name, value);
    }
    let refused = [header::UPGRADE, header::EXPECT, header::TRANSFER_ENCODING];
    if refused.iter().any(|h| map.contains_key(h)) || map.get_all(header::HOST).iter().count() != 1
    {
        return Err(NotPlain);
    }
    let lengths = map.get_all(header::CONTENT_LENGTH).iter();
    let body_len = match content_length(lengths.map(HeaderValue::as_bytes)) {
        Ok(Some(n)) if n <= MAX_BODY => n as usize,
        Ok(None) => 0,
        _ => return Err(NotPlain),
    };
    let Ok(uri) = path.parse() else {
        return Err(NotPlain);
    };
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.headers = map;
    Ok(Some(Request {
        parts,
        head_len,
        body_len,
    }))
}

/// What lets a request through: its sprite, which is awake, and the mark
/// of work in flight that keeps it so until the response ends.
struct Admitted {
    route: std::sync::Arc<Route>,
    woke: bool,
    busy: crate::workers::idle::Busy,
}

/// The sprite a request may reach, awake; nothing when the app must
/// answer instead (not a sprite's host, no such sprite, no credentials,
/// it would not wake).
async fn admit(state: &AppState, request: &Request) -> Option<Admitted> {
    let label = sprite_label(&state.urls.base_domain, &request.parts.headers)?;
    let route = resolve(state, &label).await.ok()??;
    if !route.public {
        authorize(state, &route, &request.parts).await.ok()?;
    }
    let busy = state.activity.busy(&route.host).await;
    let woke = wake(state, &route.host, &route.org_id).await.ok()?;
    Some(Admitted { route, woke, busy })
}

enum Outcome {
    /// Answered, with `used` bytes of the client's buffer; whether the
    /// client connection goes on.
    Done { used: usize, keep: bool },
    /// Nothing was sent either way: the app takes the request.
    Refused,
    /// The client connection is broken or was answered with an error.
    Ended,
}

/// The buffers of one client connection, kept between its requests.
#[derive(Default)]
struct Relay {
    out: Vec<u8>,
    upbuf: BytesMut,
    /// The forwarding headers for the last `Host` seen.
    forwarding: Option<Forwarding>,
}

impl Relay {
    /// Forwards one request (its head and body at the start of `inbuf`)
    /// and relays its response.
    async fn one(
        &mut self,
        state: &AppState,
        client: &mut TcpStream,
        addr: SocketAddr,
        request: Request,
        admitted: Admitted,
        inbuf: &[u8],
    ) -> Outcome {
        let Request {
            mut parts,
            head_len,
            body_len,
        } = request;
        let Admitted { route, woke, busy } = admitted;
        let client_close = wants_close(&parts.headers);
        let host = parts.headers.get(header::HOST);
        if self
            .forwarding
            .as_ref()
            .is_none_or(|f| f.host.as_ref() != host)
        {
            self.forwarding = Some(Forwarding::new(Some(addr.ip()), &state.urls.scheme, host));
        }
        if let Some(forwarding) = &self.forwarding {
            forwarded_headers(&mut parts.headers, forwarding, false);
        }
        self.out.clear();
        write_request_head(&mut self.out, &parts);
        self.out
            .extend_from_slice(&inbuf[head_len..head_len + body_len]);

        // A kept connection the app has dropped since shows as a failed
        // write, or as an end before any answer; then the request goes again
        // on a new connection if the app cannot have acted on it already.
        let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut kept = state.upstreams.take_stream(&route.host);
        let (mut upstream, mut head) = loop {
            let reused = kept.is_some();
            let mut upstream = match kept.take() {
                Some(c) => c,
                None => match open(state, &route, woke).await {
                    Ok(c) => c,
                    Err(_) => return Outcome::Refused,
                },
            };
            self.upbuf.clear();
            let (error, again) = match upstream.write_all(&self.out).await {
                Err(e) => (HeadError::Io(e), true),
                Ok(()) => match read_response_head(&mut upstream, &mut self.upbuf).await {
                    Ok(head) => break (upstream, head),
                    Err(e) => {
                        let again =
                            idempotent && self.upbuf.is_empty() && matches!(e, HeadError::Io(_));
                        (e, again)
                    }
                },
            };
            if !(reused && again) {
                tracing::debug!(sprite = %route.name, error = %error, "the sprite's app gave no answer");
                let _ = client.write_all(BAD_GATEWAY).await;
                return Outcome::Ended;
            }
        };

        // Interim answers (103 Early Hints, a 100 not asked for) pass as
        // they came; then the final one.
        while head.interim {
            if client.write_all(&self.upbuf[..head.len]).await.is_err() {
                return Outcome::Ended;
            }
            self.upbuf.advance(head.len);
            head = match read_response_head(&mut upstream, &mut self.upbuf).await {
                Ok(h) => h,
                Err(_) => return Outcome::Ended,
            };
        }
        let framing = match head.framing(&parts.method) {
            Some(f) => f,
            None => {
                let _ = client.write_all(BAD_GATEWAY).await;
                return Outcome::Ended;
            }
        };
        let keep = !client_close && !matches!(framing, Framing::UntilClose);
        self.out.clear();
        write_response_head(&mut self.out, &self.upbuf[..head.len], keep);
        self.upbuf.advance(head.len);

        let upstream_done = relay_body(
            &mut upstream,
            client,
            framing,
            &mut self.upbuf,
            &mut self.out,
        )
        .await;
        if self.upbuf.capacity() > KEPT {
            self.upbuf = BytesMut::new();
        }
        self.out.clear();
        self.out.shrink_to(KEPT);
        let outcome = match upstream_done {
            Ok(clean) => {
                if clean && head.reusable() {
                    state.upstreams.put_stream(&route.host, upstream);
                }
                Outcome::Done {
                    used: head_len + body_len,
                    keep,
                }
            }
            Err(_) => Outcome::Ended,
        };
        drop(busy);
        outcome
    }
}

/// Whether the client asked to close after this request.
fn wants_close(headers: &HeaderMap) -> bool {
    super::items(headers, header::CONNECTION, ',').any(|i| i.eq_ignore_ascii_case("close"))
}

/// The request line and headers as the sprite's app gets them.
fn write_request_head(out: &mut Vec<u8>, parts: &Parts) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[derive(Debug)]
enum HeadError {
    Io(std::io::Error),
    Malformed,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Io(e) => write!(f, "{e}"),
            HeadError::Malformed => f.write_str("a malformed or too long response head"),
        }
    }
}

/// What a response head says about the response.
struct ResponseHead {
    /// Its length in bytes.
    len: usize,
    status: u16,
    /// A 1xx answer before the final one.
    interim: bool,
    http11: bool,
    /// HTTP/1.1 without `Connection: close`: the app keeps the connection.
    keep_alive: bool,
    /// Whether it has `Transfer-Encoding`, and the last coding is chunked.
    transfer_encoding: Option<bool>,
    length: Result<Option<u64>, ()>,
}

/// How a response's body ends.
#[derive(Debug, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl ResponseHead {
    /// Whether the connection may carry another request after this
    /// response: the app keeps it, and the framing was unambiguous (both
    /// `Transfer-Encoding` and `Content-Length` may mean a smuggled
    /// response behind this one).
    fn reusable(&self) -> bool {
        self.keep_alive && !(self.transfer_encoding.is_some() && self.length != Ok(None))
    }

    /// The body's framing for a request of `method`; nothing for a
    /// response a client cannot be given (an upgrade not asked for, an
    /// unknown or contradictory framing).
    fn framing(&self, method: &Method) -> Option<Framing> {
        if self.status == 101 {
            return None;
        }
        if *method == Method::HEAD || self.status == 204 || self.status == 304 {
            return Some(Framing::Length(0));
        }
        match (self.transfer_encoding, &self.length) {
            (Some(true), _) if self.http11 => Some(Framing::Chunked),
            (Some(_), _) => None,
            (None, Ok(Some(n))) => Some(Framing::Length(*n)),
            (None, Ok(None)) => Some(Framing::UntilClose),
            (None, Err(())) => None,
        }
    }
}

/// Reads the next response head into `buf` (which may hold its start).
async fn read_response_head(
    upstream: &mut Connection,
    buf: &mut BytesMut,
) -> Result<ResponseHead, HeadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_response_head(buf)? {
                return Ok(head);
            }
        }
        buf.reserve(ROOM);
        match upstream.read_buf(buf).await {
            Ok(0) => {
                return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// The response head at the start of `buf`; nothing while it is partial.
fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        _ => return Err(HeadError::Malformed),
    };
    let values = |name: &'static str| {
        res.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let close = values("connection")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .any(|i| i.trim().eq_ignore_ascii_case("close"));
    let transfer_encoding = values("transfer-encoding").next_back().map(|v| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
    });
    let status = res.code.unwrap_or(0);
    let http11 = res.version == Some(1);
    Ok(Some(ResponseHead {
        len,
        status,
        interim: (100..200).contains(&status) && status != 101,
        http11,
        keep_alive: http11 && !close,
        transfer_encoding,
        length: content_length(values("content-length")),
    }))
}

/// The one length that `Content-Length` values give (repeats must
/// agree); `Err` for one that is not a number.
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, ()> {
    let mut length = None;
    for v in values {
        for item in std::str::from_utf8(v).map_err(|_| ())?.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n: u64 = item.parse().map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// The response head as the client gets it: the status line in HTTP/1.1,
/// the app's headers but those of its connection to us, and
/// `Connection: close` when this is the connection's last response.
fn write_response_head(out: &mut Vec<u8>, raw: &[u8], keep: bool) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    // Parsed whole before, so it parses again.
    let _ = res.parse(raw);
    let named: Vec<&str> = res
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        res.code.unwrap_or(502),
        res.reason.unwrap_or("")
    );
    for h in res.headers.iter() {
        let hop = super::HOP_BY_HOP
            .iter()
            .filter(|n| **n != header::TRANSFER_ENCODING)
            .any(|n| h.name.eq_ignore_ascii_case(n.as_str()))
            || named.iter().any(|n| h.name.eq_ignore_ascii_case(n));
        if !hop {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    if !keep {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Relays a response body from `upstream` to `client`; `out` holds the
/// head, which goes with the body's first bytes, and `buf` what was read
/// past the head. Whether the upstream connection ended clean, at the
/// body's end with nothing more.
async fn relay_body(
    upstream: &mut Connection,
    client: &mut TcpStream,
    framing: Framing,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut length = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let mut chunked = (framing == Framing::Chunked).then(Chunked::default);
    let mut first = true;
    loop {
        // How much of `buf` is body, and whether the body ends there.
        let (take, done) = match (&mut length, &mut chunked) {
            (Some(left), _) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                (take as usize, *left == 0)
            }
            (None, Some(scan)) => match scan.scan(buf) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (buf.len(), false),
                Err(()) => return Err(std::io::Error::other("malformed chunked body")),
            },
            (None, None) => (buf.len(), false),
        };
        if first {
            out.extend_from_slice(&buf[..take]);
            client.write_all(out).await?;
            first = false;
        } else if take > 0 {
            client.write_all(&buf[..take]).await?;
        }
        buf.advance(take);
        if done {
            return Ok(buf.is_empty());
        }
        buf.clear();
        buf.reserve(CHUNK);
        if upstream.read_buf(buf).await? == 0 {
            return match (length, &chunked) {
                (None, None) => Ok(false),
                _ => Err(std::io::ErrorKind::UnexpectedEof.into()),
            };
        }
    }
}

/// Finds where a chunked body ends, fed its bytes as they come.
#[derive(Default)]
struct Chunked {
    state: ChunkState,
    size: u64,
    digits: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Debug)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunked {
    /// Scans `buf`, the next bytes of the body: where in it the body ends,
    /// or nothing if it goes on past it.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ()> {
        use ChunkState::*;
        let mut i = 0;
        while i < buf.len() {
            if self.state == Data {
                let take = self.size.min((buf.len() - i) as u64);
                self.size -= take;
                i += take as usize;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b) if b.is_ascii_hexdigit() => {
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(());
                    }
                    self.size = self.size * 16 + (b as char).to_digit(16).ok_or(())? as u64;
                    Size
                }
                (Size, b';' | b' ' | b'\t') if self.digits > 0 => Extension,
                (Size, b'\r') if self.digits > 0 => SizeLf,
                (Extension, b'\r') => SizeLf,
                (Extension, b'\n') => return Err(()),
                (Extension, _) => Extension,
                (SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.size == 0 {
                        TrailerStart
                    } else {
                        Data
                    }
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart | Trailer, b'\n') => return Err(()),
                (Trailer, b'\r') => TrailerLf,
                (TrailerStart | Trailer, _) => Trailer,
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => return Ok(Some(i)),
                _ => return Err(()),
            };
        }
        Ok(None)
    }
}

/// The answer when the sprite's app gave none that can be passed on.
const BAD_GATEWAY: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 51\r\n\
connection: close\r\n\
\r\n\
The sprite's app did not answer this request well.\n";

impl Handoff {
    fn new(stream: TcpStream, unread: BytesMut) -> Handoff {
        Handoff {
            unread: unread.freeze(),
            stream,
        }
    }

    /// The connection, out of the runtime it is in.
    pub fn detach(self) -> std::io::Result<Detached> {
        Ok(Detached {
            unread: self.unread,
            stream: self.stream.into_std()?,
        })
    }
}

impl AsyncRead for Handoff {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.unread.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Handoff {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(body: &[u8], piece: usize) -> Result<Option<usize>, ()> {
        let mut scan = Chunked::default();
        let mut at = 0;
        for part in body.chunks(piece) {
            if let Some(end) = scan.scan(part)? {
                return Ok(Some(at + end));
            }
            at += part.len();
        }
        Ok(None)
    }

    #[test]
    fn a_chunked_body_ends_where_its_last_chunk_and_trailers_do() {
        let body =
            b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for piece in [1, 2, 3, 7, body.len()] {
            assert_eq!(ends(body, piece), Ok(Some(end)), "in pieces of {piece}");
        }
        assert_eq!(ends(b"0\r\n\r\n", 1), Ok(Some(5)));
        assert_eq!(ends(b"5\r\nhel", 2), Ok(None));
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloX\r\n",
            b"5\nhello\r\n",
            b"10000000000000000\r\n",
            b"0\r\nbad\ntrailer\r\n\r\n",
        ] {
            assert_eq!(ends(bad, 1), Err(()), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn only_plain_requests_are_taken() {
        let plain = |raw: &[u8]| match parse_request(raw) {
            Ok(Some(r)) => Some((r.head_len, r.body_len)),
            Ok(None) => Some((0, 0)),
            Err(NotPlain) => None,
        };
        let get = b"GET /a?b=1 HTTP/1.1\r\nHost: web-alice.localhost\r\n\r\n";
        assert_eq!(plain(get), Some((get.len(), 0)));
        assert_eq!(plain(&get[..20]), Some((0, 0)), "partial");
        let post = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(plain(post), Some((post.len() - 3, 3)));
        for other in [
            &b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"[..],
            b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999\r\n\r\n",
            b"GET /__sprite_auth?ticket=x HTTP/1.1\r\nHost: h\r\n\r\n",
            b"CONNECT h:80 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(plain(other), None, "{:?}", String::from_utf8_lossy(other));
        }
    }

    fn head(raw: &str) -> ResponseHead {
        parse_response_head(raw.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn a_response_is_framed_as_the_rules_say_or_refused() {
        let get = Method::GET;
        let f = |raw: &str, m: &Method| head(raw).framing(m);
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &get),
            Some(Framing::Length(5))
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                &Method::HEAD
            ),
            Some(Framing::Length(0))
        );
        assert_eq!(
            f("HTTP/1.1 304 Not Modified\r\n\r\n", &get),
            Some(Framing::Length(0))
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                &get
            ),
            Some(Framing::Chunked)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\n\r\n", &get),
            Some(Framing::UntilClose)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", &get),
            None
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                &get
            ),
            None
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &get),
            None
        );
        assert_eq!(f("HTTP/1.1 101 Switching Protocols\r\n\r\n", &get), None);
        let both =
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(both.framing(&get), Some(Framing::Chunked));
        assert!(
            !both.reusable(),
            "a doubly framed response ends its connection"
        );
    }

    #[test]
    fn the_client_gets_the_apps_headers_without_those_of_its_connection() {
        let mut out = vec![];
        write_response_head(
            &mut out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, x-hop\r\nKeep-Alive: timeout=5\r\nx-hop: 1\r\nSet-Cookie: a=b\r\n\r\n",
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=b\r\nconnection: close\r\n\r\n"
        );
    }
}
