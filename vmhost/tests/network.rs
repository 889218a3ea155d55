//! Egress: a sprite reaches the outside through the host's NAT, but never a
//! refused range, the host itself, or another sprite. "Outside" here is a
//! network namespace the test makes, holding documentation addresses
//! (203.0.113.0/24, and the halves of 198.51.100.0/24; 192.0.2.0/24 may be
//! the machine's own network); the refused network is in the benchmarking
//! range (198.18.0.0/15). Network policies are tried with a name server
//! of the test's own on the host's loopback. Nothing leaves the machine.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{host, name, sh};
use vmhost::{CreateOptions, Host, SpriteName};

/// A namespace linked to the host, with a web server on `ip`:80.
struct Network {
    ns: String,
    server: Child,
}

impl Network {
    fn new(ns: &str, addr: &str, host_ip: &str, prefix: u8) -> Network {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
        let link = format!("{}h", &ns[..ns.len().min(12)]);
        let _ = Command::new("ip").args(["link", "del", &link]).status();
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?} failed");
        };
        let peer = format!("{link}p");
        let (host_cidr, cidr) = (format!("{host_ip}/{prefix}"), format!("{addr}/{prefix}"));
        ip(&["netns", "add", ns]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", ns]);
        ip(&["addr", "add", &host_cidr, "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&["-n", ns, "addr", "add", &cidr, "dev", &peer]);
        ip(&["-n", ns, "link", "set", &peer, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        std::fs::create_dir_all(format!("/tmp/{ns}")).unwrap();
        std::fs::write(
            format!("/tmp/{ns}/index.html"),
            format!("hello from {ns}\n"),
        )
        .unwrap();
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                "0.0.0.0",
            ])
            .current_dir(format!("/tmp/{ns}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The host reaches the namespace directly: wait for the server.
        let target: std::net::SocketAddr = format!("{addr}:80").parse().unwrap();
        let listening = (0..200).any(|_| {
            std::net::TcpStream::connect_timeout(&target, Duration::from_millis(100)).is_ok() || {
                std::thread::sleep(Duration::from_millis(25));
                false
            }
        });
        assert!(listening, "the server in {ns} does not listen");
        Network {
            ns: ns.to_string(),
            server,
        }
    }
}

impl Network {
    /// Gives the namespace a second address, served alike.
    fn add_address(&self, cidr: &str) {
        let peer = format!("{}hp", &self.ns[..self.ns.len().min(12)]);
        let ok = Command::new("ip")
            .args(["-n", &self.ns, "addr", "add", cidr, "dev", &peer])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot add {cidr} in {}", self.ns);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(format!("/tmp/{}", self.ns));
    }
}

/// Waits until the sprite has its link out (its address and its default
/// route, the last thing set); its address.
async fn address(host: &Host, s: &SpriteName) -> String {
    for _ in 0..200 {
        let (out, _, _) = sh(
            host,
            s,
            "ip -4 route show default | grep -q . && ip -4 -o addr show dev eth0 2>/dev/null",
        )
        .await;
        if let Some(addr) = out.split_whitespace().nth(3) {
            return addr.split('/').next().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no network in the sprite");
}

async fn fetch(host: &Host, s: &SpriteName, url: &str) -> String {
    let (out, _, _) = sh(host, s, &format!("curl -s -m 2 {url} || echo unreachable")).await;
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sprites_reach_outside_but_not_refused_ranges_the_host_or_each_other() {
    let host = host("t-network").await;
    let outside = Network::new("tnet-out", "203.0.113.1", "203.0.113.254", 24);
    let refused = Network::new("tnet-refused", "198.18.0.1", "198.18.0.254", 24);
    let (a, b) = (name("neta"), name("netb"));
    host.create(&a, CreateOptions::default()).await.unwrap();
    host.create(&b, CreateOptions::default()).await.unwrap();
    let addr_a = address(&host, &a).await;
    let addr_b = address(&host, &b).await;
    assert!(
        addr_a.starts_with("100.") && addr_a != addr_b,
        "{addr_a} {addr_b}"
    );

    // Out through NAT: the server sees the host's address, not the sprite's.
    let started = std::time::Instant::now();
    let answer = fetch(&host, &a, "http://203.0.113.1/index.html").await;
    assert_eq!(
        answer,
        "hello from tnet-out\n",
        "after {:?}",
        started.elapsed()
    );
    assert_eq!(
        fetch(&host, &a, "http://198.18.0.1/index.html").await,
        "unreachable\n",
        "a refused range"
    );

    // The host itself, on any of its addresses, is out of reach.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for ip in ["203.0.113.254", "100.64.0.1"] {
        assert_eq!(
            fetch(&host, &a, &format!("http://{ip}:{port}/")).await,
            "unreachable\n",
            "the host at {ip}"
        );
    }

    // Another sprite is out of reach, even listening on all addresses.
    sh(
        &host,
        &b,
        "cd /tmp && (setsid python3 -m http.server 8081 >/dev/null 2>&1 &)",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fetch(&host, &a, &format!("http://{addr_b}:8081/")).await,
        "unreachable\n"
    );

    // The link comes back after a cold sleep, and goes with the sprite.
    host.sleep_cold(&a).await.unwrap();
    host.wake(&a).await.unwrap();
    address(&host, &a).await;
    assert_eq!(
        fetch(&host, &a, "http://203.0.113.1/index.html").await,
        "hello from tnet-out\n"
    );
    host.destroy(&a).await.unwrap();
    host.destroy(&b).await.unwrap();
    drop(outside);
    drop(refused);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_started_at_once_after_create_or_wake_has_the_network() {
    let host = host("t-net-first").await;
    let outside = Network::new("tnet-first", "198.51.100.1", "198.51.100.126", 25);
    for i in 0..3 {
        let s = name(&format!("first{i}"));
        host.create(&s, CreateOptions::default()).await.unwrap();
        // No waiting for the link: the very first command has it.
        assert_eq!(
            fetch(&host, &s, "http://198.51.100.1/index.html").await,
            "hello from tnet-first\n",
            "the first command after create {i}"
        );
        host.sleep_cold(&s).await.unwrap();
        host.wake(&s).await.unwrap();
        assert_eq!(
            fetch(&host, &s, "http://198.51.100.1/index.html").await,
            "hello from tnet-first\n",
            "the first command after a cold wake {i}"
        );
        host.destroy(&s).await.unwrap();
    }
    drop(outside);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_egress_a_sprite_has_only_its_loopback() {
    let mut cfg = vmhost::testing::config("t-no-egress");
    cfg.egress = false;
    let host = vmhost::testing::host_with(cfg).await;
    let s = name("island");
    host.create(&s, CreateOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (out, _, _) = sh(&host, &s, "ip -o link | grep -c ': eth0' || true").await;
    assert_eq!(out.trim(), "0");
    host.destroy(&s).await.unwrap();
}

/// Whether a new loopback connection to `port` shows in the host's
/// connection tracking table.
fn tracked(listener: &std::net::TcpListener) -> bool {
    let port = listener.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let from = client.local_addr().unwrap().port();
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap();
    let needle = format!("sport={from} dport={port} ");
    table.lines().any(|l| l.contains(&needle))
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_connections_to_the_servers_port_can_skip_tracking() {
    // The host's egress table (its NAT) turns tracking on for the host.
    let h = host("t-net-track").await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(tracked(&listener), "tracked until told otherwise");
    let untracked = h.untrack_loopback(port).unwrap();
    let again = h.untrack_loopback(port).unwrap();
    assert!(!tracked(&listener), "no longer tracked");
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(tracked(&other), "other ports still are");
    drop(again);
    drop(untracked);
    assert!(tracked(&listener), "tracked again");
}

/// A name server on the host's loopback answering A queries for `names`
/// (TTL 300), nothing for other types, NXDOMAIN for other names.
async fn name_server(names: &'static [(&'static str, &'static str)]) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_recursion_available(true);
            let q = query.queries()[0].clone();
            let asked = q.name().to_ascii().trim_end_matches('.').to_string();
            match names.iter().find(|(n, _)| *n == asked) {
                Some((_, ip)) if q.query_type() == RecordType::A => {
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::A(A(ip.parse().unwrap())),
                    ));
                }
                Some(_) => {}
                None => {
                    reply.set_response_code(ResponseCode::NXDomain);
                }
            }
            reply.add_query(q);
            socket
                .send_to(&reply.to_vec().unwrap(), from)
                .await
                .unwrap();
        }
    });
    addr
}

/// The response code the sprite's resolver gives for `name`'s A record.
async fn rcode(host: &Host, s: &SpriteName, name: &str) -> String {
    let script = format!(
        r#"python3 -c '
import socket, struct
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in "{name}".split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("127.0.0.53", 53))
print(s.recv(512)[3] & 15)
'"#
    );
    sh(host, s, &script).await.0.trim().to_string()
}

/// Opens a connection to `denied.test` and keeps it, sending a request
/// on it once `/tmp/go` exists; `/tmp/result` says what came back.
const HELD_CONNECTION: &str = r#"cat > /tmp/held.py <<'PY'
import os, socket, time
c = socket.create_connection(("denied.test", 80), timeout=5)
open("/tmp/connected", "w").close()
while not os.path.exists("/tmp/go"):
    time.sleep(0.05)
try:
    c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = c.recv(100)
    r = "got " + data.split(b"\r\n")[0].decode() if data else "closed"
except Exception as e:
    r = "cut " + type(e).__name__
open("/tmp/result", "w").write(r)
PY
(setsid python3 /tmp/held.py >/dev/null 2>&1 &)
for i in $(seq 100); do [ -e /tmp/connected ] && break; sleep 0.05; done
[ -e /tmp/connected ] && echo connected"#;

/// Whether `s` is still under the allowlist of the test below: the
/// denied name refused, its address unreachable, the allowed one reached.
async fn still_under(host: &Host, s: &SpriteName) {
    assert_eq!(rcode(host, s, "denied.test").await, "5");
    assert_eq!(
        fetch(host, s, "http://198.51.100.130/index.html").await,
        "unreachable\n"
    );
    assert_eq!(
        fetch(host, s, "http://allowed.test/index.html").await,
        "hello from tnet-policy\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_policy_decides_names_and_addresses_and_changes_at_once() {
    use sprites_wire::policy::{NetworkPolicy, PolicyRule};
    const NAMES: &[(&str, &str)] = &[
        ("allowed.test", "198.51.100.129"),
        ("www.wild.test", "198.51.100.129"),
        ("denied.test", "198.51.100.130"),
    ];
    let mut cfg = vmhost::testing::config("t-net-policy");
    cfg.name_servers = vec![name_server(NAMES).await];
    let host = vmhost::testing::host_with(cfg.clone()).await;
    let outside = Network::new("tnet-policy", "198.51.100.129", "198.51.100.254", 25);
    outside.add_address("198.51.100.130/25");
    let s = name("guarded");
    host.create(&s, CreateOptions::default()).await.unwrap();
    let hello = "hello from tnet-policy\n";

    // No policy: names resolve through the sprite's resolver, and connect.
    assert_eq!(rcode(&host, &s, "denied.test").await, "0");
    assert_eq!(
        fetch(&host, &s, "http://denied.test/index.html").await,
        hello
    );
    assert_eq!(sh(&host, &s, HELD_CONNECTION).await.0.trim(), "connected");

    // An allowlist, applied to the running sprite.
    let policy = NetworkPolicy {
        rules: vec![
            PolicyRule::allow("allowed.test"),
            PolicyRule::allow("*.wild.test"),
        ],
    };
    host.set_network_policy(&s, policy.clone()).await.unwrap();
    assert_eq!(host.network_policy(&s).unwrap(), policy);
    assert_eq!(rcode(&host, &s, "denied.test").await, "5", "REFUSED");
    assert_eq!(rcode(&host, &s, "allowed.test").await, "0");
    assert_eq!(
        fetch(&host, &s, "http://allowed.test/index.html").await,
        hello
    );
    assert_eq!(
        fetch(&host, &s, "http://www.wild.test/index.html").await,
        hello
    );
    assert_eq!(
        fetch(&host, &s, "http://denied.test/index.html").await,
        "unreachable\n"
    );
    assert_eq!(
        fetch(&host, &s, "http://198.51.100.130/index.html").await,
        "unreachable\n",
        "the denied host's address, written out"
    );
    // The connection opened before the policy is cut.
    let (held, _, _) = sh(
        &host,
        &s,
        "touch /tmp/go; for i in $(seq 100); do [ -e /tmp/result ] && break; sleep 0.05; done; cat /tmp/result",
    )
    .await;
    assert!(held.starts_with("cut "), "{held}");

    // The sprite reads its policy and cannot change it.
    let (shown, _, _) = sh(&host, &s, &format!("cat {}", vmhost::sprite::POLICY_FILE)).await;
    let shown: NetworkPolicy = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown, policy);
    let (_, _, code) = sh(
        &host,
        &s,
        &format!(
            "echo '{{\"rules\":[]}}' > {} 2>/dev/null",
            vmhost::sprite::POLICY_FILE
        ),
    )
    .await;
    assert_ne!(code, 0, "the policy file is read-only inside");

    // A bad policy is refused and the old one stays.
    let bad = NetworkPolicy {
        rules: vec![PolicyRule::allow("not a name")],
    };
    assert!(matches!(
        host.set_network_policy(&s, bad).await,
        Err(vmhost::Error::Invalid(_))
    ));
    assert_eq!(host.network_policy(&s).unwrap(), policy);

    // A second process opening the host (the `vmhost` command beside the
    // server) leaves the policy in force when it ends; so does a restart
    // of the host, which re-adopts the running sprite.
    vmhost::Host::open(cfg.clone()).await.unwrap().close().await;
    still_under(&host, &s).await;
    host.close().await;
    let host = vmhost::Host::open(cfg).await.unwrap();
    still_under(&host, &s).await;

    // The policy holds after a cold sleep and a wake.
    host.sleep_cold(&s).await.unwrap();
    host.wake(&s).await.unwrap();
    still_under(&host, &s).await;

    // No rules: the whole network again, at once.
    host.set_network_policy(&s, NetworkPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        fetch(&host, &s, "http://denied.test/index.html").await,
        hello
    );
    assert_eq!(
        fetch(&host, &s, "http://198.51.100.130/index.html").await,
        hello
    );
    host.destroy(&s).await.unwrap();
    drop(outside);
}
