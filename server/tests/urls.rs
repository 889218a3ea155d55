//! Sprite URLs against a real server and real sprites: public and private
//! access, the browser hand-off, what the sprite's app sees, streaming both
//! ways, upgrades, and waking on a request.

mod common;

use std::time::Duration;

use common::{start, start_as, start_replicated, Backend, TestServer};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};
use serde_json::{json, Value};
use sprites_wire::client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An app for port 8080: echoes the request it got as JSON, counts an
/// upload, streams events slowly, and answers `Upgrade: echo` by echoing.
/// Some paths answer as careless or hostile apps do: `/chunked` in chunks,
/// `/empty` with 204, `/drop` by closing its connection unannounced after
/// the answer, `/smuggle` with a second answer of its own behind the first.
const APP: &str = r#"
import http.server, json, socketserver, time

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self, body, kind="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.headers.get("Upgrade") == "echo":
            self.send_response(101)
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "echo")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
            return
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n")
            return
        if self.path == "/empty":
            self.send_response(204)
            self.end_headers()
            return
        if self.path == "/drop":
            self.reply(b"dropped")
            self.close_connection = True
            return
        if self.path == "/smuggle":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
            return
        if self.path == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(("data: %d\n\n" % i).encode())
                self.wfile.flush()
                time.sleep(0.4)
            self.close_connection = True
            return
        self.reply(json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode())
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "123")
        self.end_headers()
    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        total = 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            total += len(chunk)
            left -= len(chunk)
        self.reply(json.dumps({"received": total}).encode())

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

S(("0.0.0.0", 8080), H).serve_forever()
"#;

/// Creates `name` and starts the app in it.
async fn sprite_with_app(srv: &TestServer, token: &str, name: &str, auth: &str) {
    let req = json!({"name": name, "url_settings": {"auth": auth}});
    let (st, v) = srv.post(token, "/v1/sprites", req).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let host = srv.host_name(name).await;
    let files = srv.host.files(&host).unwrap();
    files
        .write("/srv/app.py", APP.as_bytes(), None, true)
        .unwrap();
    let out = srv
        .run(
            name,
            &[
                "sh",
                "-c",
                "setsid python3 /srv/app.py >/tmp/app.log 2>&1 &",
            ],
        )
        .await;
    assert_eq!(out.code, 0);
    for _ in 0..100 {
        if srv
            .state
            .host
            .connect(&host, "localhost", 8080)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app did not start");
}

/// A client that reaches `<label>.localhost` on the test server, without
/// following redirects (the tests follow the hand-off by hand).
fn client(srv: &TestServer, labels: &[&str], cookies: bool) -> reqwest::Client {
    let addr: std::net::SocketAddr = srv.base.trim_start_matches("http://").parse().unwrap();
    let mut b = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .cookie_store(cookies)
        .resolve("localhost", addr);
    for l in labels {
        b = b.resolve(&format!("{l}.localhost"), addr);
    }
    b.build().unwrap()
}

fn port(srv: &TestServer) -> u16 {
    srv.base.rsplit(':').next().unwrap().parse().unwrap()
}

fn at(srv: &TestServer, label: &str, path: &str) -> String {
    format!("http://{label}.localhost:{}{path}", port(srv))
}

async fn json_of(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_sprite_serves_its_app_and_never_sees_credentials() {
    let (srv, [alice]) = start_as("t-url-public", ["alice"]).await;
    sprite_with_app(&srv, &alice, "site", "public").await;
    let c = client(&srv, &["site-alice"], false);

    let res = c
        .get(at(&srv, "site-alice", "/hello?x=1"))
        .bearer_auth(&alice)
        .header(
            COOKIE,
            "theme=dark; __sprite_auth=stolen; sprites_session=stolen",
        )
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = json_of(res).await;
    assert_eq!(seen["path"], "/hello?x=1");
    let h = &seen["headers"]; // names as the proxy writes them: lowercase
    assert_eq!(
        h["host"],
        format!("site-alice.localhost:{}", port(&srv)),
        "{h}"
    );
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["forwarded"]
        .as_str()
        .unwrap()
        .starts_with("for=127.0.0.1;"));
    assert_eq!(h["cookie"], "theme=dark", "{h}");
    assert!(h.get("authorization").is_none(), "{h}");

    // Bodies stream both ways: a large upload, and events as they come.
    let upload = vec![7u8; 24 << 20];
    let res = c
        .post(at(&srv, "site-alice", "/upload"))
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["received"], 24 << 20);
    let started = std::time::Instant::now();
    let mut res = c
        .get(at(&srv, "site-alice", "/events"))
        .send()
        .await
        .unwrap();
    let first = res.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: 0\n\n");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the first event came only with the last"
    );
    let mut rest = Vec::new();
    while let Some(c) = res.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"data: 1\n\ndata: 2\n\n");

    // An upgrade becomes a spliced connection (as WebSockets do).
    let mut tcp = tokio::net::TcpStream::connect(srv.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: site-alice.localhost:{}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        port(&srv)
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the upgrade: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    tcp.write_all(b"ping through the proxy").await.unwrap();
    let mut echo = vec![0u8; 22];
    tcp.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping through the proxy");

    // Unknown sprites, and sprites that do not listen, say so in a page.
    let res = c.get(at(&srv, "nope-alice", "/")).send().await;
    assert!(res.is_err() || res.unwrap().status() == StatusCode::NOT_FOUND);
    let c2 = client(&srv, &["nope-alice", "quiet-alice"], false);
    let res = c2.get(at(&srv, "nope-alice", "/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (st, _) = srv
        .post(
            &alice,
            "/v1/sprites",
            json!({"name": "quiet", "url_settings": {"auth": "public"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let res = c2.get(at(&srv, "quiet-alice", "/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("nothing listens on port 8080"));
}

/// A client connection of its own, for what an HTTP library hides:
/// pipelining, framing, the hosts one connection visits. `HOST` in a
/// request stands for the sprite's host.
struct Raw {
    tcp: tokio::net::TcpStream,
    /// Read and not yet answered for.
    buf: Vec<u8>,
    host: String,
}

impl Raw {
    async fn open(srv: &TestServer, host: &str) -> Raw {
        let tcp = tokio::net::TcpStream::connect(srv.base.trim_start_matches("http://"))
            .await
            .unwrap();
        Raw {
            tcp,
            buf: vec![],
            host: host.to_string(),
        }
    }

    async fn send(&mut self, req: &str) {
        let req = req.replace("HOST", &self.host);
        self.tcp.write_all(req.as_bytes()).await.unwrap();
    }

    /// A GET of `path`, answered by the app with what it saw.
    async fn seen(&mut self, path: &str) -> Value {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: HOST\r\n\r\n"))
            .await;
        self.json().await
    }

    /// The next answer, a 200 with the app's JSON.
    async fn json(&mut self) -> Value {
        let (head, body) = self.answer(false).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("JSON, not {:?}", String::from_utf8_lossy(&body)))
    }

    /// The next answer (what follows it stays in `buf`): its head, and its
    /// body, unchunked. `no_body` for an answer to HEAD.
    async fn answer(&mut self, no_body: bool) -> (String, Vec<u8>) {
        async fn more(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) {
            let mut b = vec![0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut b))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            assert!(
                n > 0,
                "closed early, after {:?}",
                String::from_utf8_lossy(buf)
            );
            buf.extend_from_slice(&b[..n]);
        }
        let (tcp, buf) = (&mut self.tcp, &mut self.buf);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            more(tcp, buf).await;
        };
        let head = String::from_utf8(buf.drain(..end).collect()).unwrap();
        let lower = head.to_ascii_lowercase();
        let status: u16 = head[9..12].parse().unwrap();
        if no_body || status == 204 || status == 304 {
            return (head, vec![]);
        }
        let mut body = vec![];
        if lower.contains("transfer-encoding: chunked") {
            loop {
                while !buf.windows(2).any(|w| w == b"\r\n") {
                    more(tcp, buf).await;
                }
                let line = buf.windows(2).position(|w| w == b"\r\n").unwrap();
                let size = String::from_utf8_lossy(&buf[..line]).to_string();
                let size = usize::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
                buf.drain(..line + 2);
                if size == 0 {
                    while !buf.windows(2).any(|w| w == b"\r\n") {
                        more(tcp, buf).await;
                    }
                    // Trailers, then the empty line.
                    loop {
                        while !buf.windows(2).any(|w| w == b"\r\n") {
                            more(tcp, buf).await;
                        }
                        let line = buf.windows(2).position(|w| w == b"\r\n").unwrap();
                        buf.drain(..line + 2);
                        if line == 0 {
                            return (head, body);
                        }
                    }
                }
                while buf.len() < size + 2 {
                    more(tcp, buf).await;
                }
                body.extend(buf.drain(..size));
                buf.drain(..2);
            }
        }
        let length: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a length")
            .trim()
            .parse()
            .unwrap();
        while buf.len() < length {
            more(tcp, buf).await;
        }
        body.extend(buf.drain(..length));
        (head, body)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_carries_many_requests_with_their_framing_kept() {
    let (srv, [alice]) = start_as("t-url-conn", ["alice"]).await;
    sprite_with_app(&srv, &alice, "site", "public").await;
    let mut raw = Raw::open(&srv, &format!("site-alice.localhost:{}", port(&srv))).await;

    // Plain requests, one after another and two sent at once.
    for path in ["/one", "/two"] {
        assert_eq!(raw.seen(path).await["path"], path);
    }
    raw.send("GET /a HTTP/1.1\r\nHost: HOST\r\n\r\nPOST /b HTTP/1.1\r\nHost: HOST\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(raw.json().await["path"], "/a");
    assert_eq!(raw.json().await["received"], 5);

    // Bodies without a length, bodiless answers, and apps that misbehave.
    raw.send("GET /chunked HTTP/1.1\r\nHost: HOST\r\n\r\n")
        .await;
    assert_eq!(raw.answer(false).await.1, b"abcde");
    raw.send("HEAD /x HTTP/1.1\r\nHost: HOST\r\n\r\n").await;
    let (head, _) = raw.answer(true).await;
    assert!(
        head.to_ascii_lowercase().contains("content-length: 123"),
        "{head}"
    );
    raw.send("GET /empty HTTP/1.1\r\nHost: HOST\r\n\r\n").await;
    assert!(raw.answer(false).await.0.starts_with("HTTP/1.1 204"));
    for (path, answer) in [("/drop", "dropped"), ("/smuggle", "ok")] {
        raw.send(&format!("GET {path} HTTP/1.1\r\nHost: HOST\r\n\r\n"))
            .await;
        let (head, body) = raw.answer(false).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert_eq!(body, answer.as_bytes(), "{path}");
    }
    assert_eq!(raw.seen("/after").await["path"], "/after");

    // An upgrade on the same connection, after all that, still splices.
    raw.send("GET /ws HTTP/1.1\r\nHost: HOST\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await;
    let (head, _) = raw.answer(true).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    raw.send("still one connection").await;
    while raw.buf.len() < 20 {
        let mut b = [0u8; 64];
        let n = raw.tcp.read(&mut b).await.unwrap();
        assert!(n > 0);
        raw.buf.extend_from_slice(&b[..n]);
    }
    assert_eq!(&raw.buf[..], b"still one connection");

    // The app's own pages still come on a connection that began with a
    // sprite: the API answers there.
    let mut raw = Raw::open(&srv, &format!("site-alice.localhost:{}", port(&srv))).await;
    raw.send(&format!(
        "GET /hello HTTP/1.1\r\nHost: HOST\r\n\r\nGET /v1/sprites HTTP/1.1\r\nHost: localhost:{}\r\nAuthorization: Bearer {alice}\r\n\r\n",
        port(&srv)
    ))
    .await;
    assert_eq!(raw.json().await["path"], "/hello");
    assert_eq!(raw.json().await["sprites"][0]["name"], "site");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_sprite_admits_members_by_token_or_by_the_hand_off() {
    let (srv, [alice, bob]) = start_as("t-url-private", ["alice", "bob"]).await;
    sprite_with_app(&srv, &alice, "app", "sprite").await;
    let url = at(&srv, "app-alice", "/private?q=1");
    let c = client(&srv, &["app-alice"], false);

    // No credentials: a script is refused, a browser is sent to sign in.
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .get(&url)
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let handoff = res.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        handoff.starts_with(&format!("http://localhost:{}/v1/url-auth?", port(&srv))),
        "{handoff}"
    );
    // Tokens: the organization's pass, another's do not.
    let res = c.get(&url).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(&url).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A browser: signed in on the app's origin, through the hand-off.
    let web = client(&srv, &["app-alice"], true);
    let res = web
        .post(format!("http://localhost:{}/v1/auth/signin", port(&srv)))
        .json(&json!({"login": "alice", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = web.get(&handoff).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = res.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&at(&srv, "app-alice", "/__sprite_auth?ticket=")),
        "{back}"
    );
    let res = web.get(&back).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/private?q=1");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Domain"),
        "{cookie}"
    );
    // Usable in the web app's preview frame: a browser sends only
    // SameSite=None cookies there, which must be Secure (localhost names
    // count as secure in browsers), partitioned to the app's pages.
    assert!(
        cookie.contains("SameSite=None")
            && cookie.contains("Secure")
            && cookie.contains("Partitioned"),
        "{cookie}"
    );
    // This client keeps no Secure cookie over plain HTTP; a browser does.
    let pair = cookie.split(';').next().unwrap().to_string();
    let res = web.get(&url).header("cookie", &pair).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = json_of(res).await;
    // Neither the dashboard's session nor the hand-off cookie reaches the app.
    assert!(seen["headers"].get("cookie").is_none(), "{seen}");

    // A browser that drops the cookie would loop between the two hosts: a
    // few hand-offs in a row, then a page that says what to do instead.
    for _ in 0..3 {
        let res = web.get(&handoff).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
    let res = web.get(&handoff).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(page.contains("Open it in a new tab"), "{page}");

    // A ticket is for its holder's sprite only, and cannot be forged.
    let forged = back.replace("ticket=", "ticket=0");
    let res = web.get(&forged).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bobs = client(&srv, &[], true);
    bobs.post(format!("http://localhost:{}/v1/auth/signin", port(&srv)))
        .json(&json!({"login": "bob", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    let res = bobs.get(&handoff).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = bobs
        .get(&handoff)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.text().await.unwrap().contains("No such sprite"),
        "a person following the link reads a page"
    );
    // Without a session, the hand-off goes to sign in on the app first.
    let res = client(&srv, &[], false).get(&handoff).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/?next="));

    // Made public, it needs nothing; private again, the token is needed again.
    srv.put(
        &alice,
        "/v1/sprites/app",
        json!({"url_settings": {"auth": "public"}}),
    )
    .await;
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    srv.put(
        &alice,
        "/v1/sprites/app",
        json!({"url_settings": {"auth": "sprite"}}),
    )
    .await;
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_url_for_admins_only_refuses_the_other_members() {
    use sprites_wire::api::{UpdateSprite, UrlSettings};
    use sprites_wire::orgs::{Member, NewOrganization, NewToken};
    let (srv, [alice, bob]) = start_as("t-url-admins", ["alice", "bob"]).await;
    let crew = NewOrganization {
        slug: "crew".into(),
        name: "The Crew".into(),
        class: false,
    };
    srv.ok(&alice, client::create_organization(&crew)).await;
    let bob_member = Member {
        handle: "bob".into(),
        role: "member".into(),
    };
    srv.ok(&alice, client::set_member("crew", &bob_member))
        .await;
    let in_crew = NewToken {
        name: "crew".into(),
        organization: Some("crew".into()),
    };
    let alice_crew = srv.ok(&alice, client::create_token(&in_crew)).await.token;
    let bob_crew = srv.ok(&bob, client::create_token(&in_crew)).await.token;
    sprite_with_app(&srv, &alice_crew, "lab", "sprite").await;
    let url = at(&srv, "lab-crew", "/");
    let c = client(&srv, &["lab-crew"], false);
    let opens = |token: String| {
        let req = c.get(&url).bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    // Every member who may use it opens it, by default.
    assert_eq!(opens(bob_crew.clone()).await, StatusCode::OK);

    // For admins only: the owner opens it, a member no longer does.
    let settings = |who: &str| UpdateSprite {
        url_settings: Some(UrlSettings {
            auth: Some("sprite".into()),
            private_access: Some(who.into()),
        }),
        sleep: None,
        labels: None,
    };
    let v = srv
        .ok(
            &alice_crew,
            client::update_sprite("lab", &settings("admins")),
        )
        .await;
    assert_eq!(v.url_settings.private_access.as_deref(), Some("admins"));
    assert_eq!(opens(bob_crew.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(opens(alice_crew.clone()).await, StatusCode::OK);
    // Made an admin, Bob opens it too.
    let bob_admin = Member {
        handle: "bob".into(),
        role: "admin".into(),
    };
    srv.ok(&alice, client::set_member("crew", &bob_admin)).await;
    assert_eq!(opens(bob_crew.clone()).await, StatusCode::OK);

    // Anything else is refused and changes nothing.
    let bad = client::update_sprite("lab", &settings("everyone"));
    assert_eq!(srv.status(&alice_crew, &bad).await, StatusCode::BAD_REQUEST);
    let v = srv.ok(&alice_crew, client::sprite("lab")).await;
    assert_eq!(v.url_settings.private_access.as_deref(), Some("admins"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_wakes_a_sleeping_sprite_and_succeeds() {
    let (srv, [alice]) = start_as("t-url-wake", ["alice"]).await;
    sprite_with_app(&srv, &alice, "nap", "public").await;
    let c = client(&srv, &["nap-alice"], false);
    let (st, v) = srv.send(&alice, &client::sleep("nap", false)).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("warm")));
    let res = c.get(at(&srv, "nap-alice", "/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, v) = srv.send(&alice, &client::sprite("nap")).await;
    assert_eq!(v["status"], "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_would_share_a_url_are_refused() {
    let srv = start("t-url-clash", Backend::Sqlite).await;
    // Sprite "a-b" of organization "c", and sprite "a" of organization "b-c",
    // would both be a-b-c.localhost.
    let c = srv.user("c").await;
    let bc = srv.user("b-c").await;
    let (st, _) = srv.create(&c, "a-b").await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = srv.create(&bc, "a").await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(v["message"].as_str().unwrap().contains("URL"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_sprite_wakes_for_a_request_and_its_http_service_answers() {
    let (srv, [alice]) = start_as("t-url-cold", ["alice"]).await;
    let (st, _) = srv
        .post(
            &alice,
            "/v1/sprites",
            json!({"name": "cold", "url_settings": {"auth": "public"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // The service declares its own port: the URL goes there, not to 8080.
    let lines = serve_page(&srv, &alice, "cold", b"from the service\n").await;
    assert!(
        lines.contains("\"started\"") && lines.trim_end().ends_with("}"),
        "{lines}"
    );
    assert!(
        lines.lines().last().unwrap().contains("complete"),
        "{lines}"
    );

    let c = client(&srv, &["cold-alice"], false);
    let get = || async {
        let res = c
            .get(at(&srv, "cold-alice", "/index.html"))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    };
    // Right after the service starts it may not listen yet: the page says so.
    let mut answer = get().await;
    for _ in 0..50 {
        if answer.0 == StatusCode::OK {
            break;
        }
        assert_eq!(answer.0, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        assert!(answer.1.contains("port 8000"), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = get().await;
    }
    assert_eq!(answer, (StatusCode::OK, "from the service\n".to_string()));

    // Asleep cold, the sprite has no processes; a request wakes it, its
    // service starts again, and the request waits for it: no error.
    let (st, v) = srv.send(&alice, &client::sleep("cold", true)).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("cold")));
    assert_eq!(
        get().await,
        (StatusCode::OK, "from the service\n".to_string())
    );
}

/// Writes `page` as the sprite's /srv/index.html and serves it with a
/// service on port 8000 (which the sprite's URL then reaches); the
/// service's start, as the NDJSON lines the API answered.
async fn serve_page(srv: &TestServer, token: &str, sprite: &str, page: &[u8]) -> String {
    let files = srv.host.files(&srv.host_name(sprite).await).unwrap();
    files.write("/srv/index.html", page, None, true).unwrap();
    let service = json!({"cmd": "python3", "args": ["-m", "http.server", "8000"], "dir": "/srv", "http_port": 8000});
    let res = srv
        .client
        .put(srv.url(&format!("/v1/sprites/{sprite}/services/web?duration=1s")))
        .bearer_auth(token)
        .json(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Waits until the sprite's disk is where `location` says.
async fn wait_location(srv: &TestServer, token: &str, sprite: &str, location: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (_, v) = srv.get(token, &format!("/v1/sprites/{sprite}")).await;
        if v["replication"]["location"] == location {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {location}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evicted_sprite_comes_back_for_a_request_and_for_a_command() {
    let settings = sprites_server::Settings {
        replicate_every: Duration::from_secs(1),
        evict_after: Duration::from_secs(1),
        ..Default::default()
    };
    let srv = start_replicated("t-url-evicted", settings).await;
    let alice = srv.user("alice").await;
    let (st, _) = srv
        .post(
            &alice,
            "/v1/sprites",
            json!({"name": "far", "url_settings": {"auth": "public"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    serve_page(&srv, &alice, "far", b"kept far away\n").await;
    let c = client(&srv, &["far-alice"], false);
    let get = || async {
        let res = c
            .get(at(&srv, "far-alice", "/index.html"))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    };

    // Asleep cold past --evict-after: only in the bucket, still listed.
    let sleep = client::sleep("far", true);
    assert_eq!(srv.status(&alice, &sleep).await, StatusCode::OK);
    wait_location(&srv, &alice, "far", "bucket").await;
    let (_, list) = srv.send(&alice, &client::sprites(None)).await;
    assert_eq!(list["sprites"][0]["name"], "far", "{list}");
    // A request through its URL brings it back, and its service answers.
    assert_eq!(get().await, (StatusCode::OK, "kept far away\n".to_string()));
    let (_, v) = srv.send(&alice, &client::sprite("far")).await;
    assert_eq!(v["replication"]["location"], "local", "{v}");

    // Again, and a command brings it back.
    assert_eq!(srv.status(&alice, &sleep).await, StatusCode::OK);
    wait_location(&srv, &alice, "far", "bucket").await;
    let mut res = srv
        .client
        .post(srv.url("/v1/sprites/far/exec"))
        .query(&[("cmd", "cat"), ("cmd", "/srv/index.html")])
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        if chunk[0] == 1 {
            out.extend_from_slice(&chunk[1..]);
        }
    }
    assert_eq!(String::from_utf8(out).unwrap(), "kept far away\n");
}
