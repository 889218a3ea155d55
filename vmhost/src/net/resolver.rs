//! A sprite's resolver: `127.0.0.53:53` (UDP and TCP) in the sprite's own
//! network namespace, where its `/etc/resolv.conf` points, served by the
//! host. A name its policy does not allow is answered REFUSED; any other
//! query goes to the host's name servers, and the IPv4 addresses of the
//! answer are admitted for the sprite by its [`Gate`] (the policies kept
//! beside this module) before the answer reaches it.
//!
//! The sockets are made in the sprite's namespace by a thread that enters
//! it and ends; the queries to the host's name servers leave from the
//! host's own namespace, so a name server on the host's loopback (a local
//! stub) serves sprites too. They share their port (`SO_REUSEPORT`): a
//! second process opening the same host (the `vmhost` command beside the
//! server) serves alongside, and the server's resolver stays when it ends.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What decides a sprite's names and admits their addresses.
pub(crate) trait Gate: Send + Sync + 'static {
    /// Whether the sprite may resolve `name`.
    fn allows(&self, name: &str) -> bool;
    /// Admits `ips` (each with its TTL), given for `name`, before the
    /// answer leaves.
    fn admit(&self, name: &str, ips: &[(Ipv4Addr, u32)]) -> crate::error::Result<()>;
}

/// Where a sprite's resolver listens, inside the sprite.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);
/// How long one name server has to answer before the next is asked.
const UPSTREAM_WAIT: Duration = Duration::from_secs(2);
/// Queries of one sprite answered at once; more are dropped (the sprite's
/// resolver library asks again).
const IN_FLIGHT: usize = 64;
/// How long a TCP client may stay silent.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Binds the resolver's sockets in the network namespace of `pid` and
/// serves them on `rt`; the tasks' handles, to end them.
pub(crate) fn serve(
    net: Arc<impl Gate>,
    upstream: Arc<Vec<SocketAddr>>,
    pid: i32,
    rt: &tokio::runtime::Handle,
) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let (udp, tcp) = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<_> {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let at = socket2::SockAddr::from(SocketAddr::from((ADDRESS, 53)));
            let open = |kind: socket2::Type| -> std::io::Result<socket2::Socket> {
                let s = socket2::Socket::new(socket2::Domain::IPV4, kind, None)?;
                s.set_reuse_port(true)?;
                s.set_nonblocking(true)?;
                s.bind(&at)?;
                Ok(s)
            };
            let udp = open(socket2::Type::DGRAM)?;
            let tcp = open(socket2::Type::STREAM)?;
            tcp.listen(128)?;
            Ok((
                std::net::UdpSocket::from(udp),
                std::net::TcpListener::from(tcp),
            ))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the binding thread panicked")))
    })?;
    let _in_rt = rt.enter();
    let udp = Arc::new(tokio::net::UdpSocket::from_std(udp)?);
    let tcp = tokio::net::TcpListener::from_std(tcp)?;
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let udp_task = {
        let (net, upstream, limit) = (net.clone(), upstream.clone(), limit.clone());
        rt.spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let (net, upstream, udp) = (net.clone(), upstream.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(reply) = answer(&*net, &upstream, &query, false).await {
                        let _ = udp.send_to(&reply, from).await;
                    }
                    drop(permit);
                });
            }
        })
    };
    let tcp_task = rt.spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                continue;
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let (net, upstream) = (net.clone(), upstream.clone());
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(TCP_IDLE * 6, serve_tcp(stream, &*net, &upstream)).await;
                drop(permit);
            });
        }
    });
    Ok(vec![udp_task, tcp_task])
}

/// Answers the length-prefixed queries of one TCP client.
async fn serve_tcp(
    mut stream: tokio::net::TcpStream,
    net: &impl Gate,
    upstream: &[SocketAddr],
) -> std::io::Result<()> {
    loop {
        let Ok(query) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await else {
            return Ok(());
        };
        let Some(reply) = answer(net, upstream, &query?, true).await else {
            return Ok(());
        };
        write_framed(&mut stream, &reply).await?;
    }
}

/// One DNS message over TCP: its length (two bytes), then it.
async fn read_framed(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut message = vec![0u8; u16::from_be_bytes(len).into()];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_framed(stream: &mut tokio::net::TcpStream, message: &[u8]) -> std::io::Result<()> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// The reply to `query`: REFUSED for a name the policy does not allow,
/// else the name servers' answer (SERVFAIL if none answers). `None` for
/// what is no DNS query.
async fn answer(
    net: &impl Gate,
    upstream: &[SocketAddr],
    query: &[u8],
    tcp: bool,
) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.message_type() != MessageType::Query {
        return None;
    }
    let name = msg.queries().first().map(|q| q.name().to_ascii());
    if name.as_deref().is_some_and(|n| !net.allows(n)) {
        return refusal(&msg, ResponseCode::Refused);
    }
    let Some(reply) = forward(upstream, query, tcp).await else {
        return refusal(&msg, ResponseCode::ServFail);
    };
    if let (Some(name), Ok(r)) = (&name, Message::from_vec(&reply)) {
        let ips: Vec<(Ipv4Addr, u32)> = r
            .answers()
            .iter()
            .filter_map(|rec| match rec.data() {
                RData::A(a) => Some((a.0, rec.ttl())),
                _ => None,
            })
            .collect();
        if !ips.is_empty() {
            if let Err(e) = net.admit(name, &ips) {
                tracing::warn!(%name, error = %e, "cannot admit the addresses of an allowed name");
                return refusal(&msg, ResponseCode::ServFail);
            }
        }
    }
    Some(reply)
}

/// An answer to `query` with no records and `code`.
fn refusal(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code);
    for q in query.queries() {
        reply.add_query(q.clone());
    }
    reply.to_vec().ok()
}

/// Asks the name servers in turn; the first answer to this query.
async fn forward(upstream: &[SocketAddr], query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    for server in upstream {
        let asked = if tcp {
            tokio::time::timeout(UPSTREAM_WAIT, ask_tcp(*server, query)).await
        } else {
            tokio::time::timeout(UPSTREAM_WAIT, ask_udp(*server, query)).await
        };
        match asked {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(e)) => tracing::debug!(%server, error = %e, "a name server failed"),
            Err(_) => tracing::debug!(%server, "a name server did not answer in time"),
        }
    }
    None
}

async fn ask_udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Only the answer to this query (its id) counts.
        if n >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn ask_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(server).await?;
    write_framed(&mut stream, query).await?;
    read_framed(&mut stream).await
}

/// The name servers of the host's `/etc/resolv.conf`, else public ones.
pub fn host_name_servers() -> Vec<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<SocketAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        vec![
            SocketAddr::from(([1, 1, 1, 1], 53)),
            SocketAddr::from(([8, 8, 8, 8], 53)),
        ]
    } else {
        servers
    }
}

/// The `/etc/resolv.conf` sprites see.
pub fn resolv_conf() -> String {
    format!("nameserver {ADDRESS}\noptions edns0\n")
}
