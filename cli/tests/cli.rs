//! The real `sprite` binary against a real server (SQLite, the shared test
//! pool, crun), as a user types it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use sprites_server::{domain::accounts, start_local, AppState, Settings};

struct Env {
    base: String,
    token: String,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    state: AppState,
    /// The root the CLI trusts for HTTPS, when the server serves it.
    root: Option<std::path::PathBuf>,
}

async fn server(instance: &str) -> Env {
    server_with(instance, Settings::default()).await
}

async fn server_with(instance: &str, settings: Settings) -> Env {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", home.path().join("cli.db").display());
    let host = vmhost::testing::host(instance).await;
    let (base, state) = start_local(Arc::new(host), &url, settings, work.path().to_path_buf())
        .await
        .unwrap();
    with_user(base, state, home, work, None).await
}

/// A server at https://localhost:PORT with the operator's own certificate
/// for `localhost`, from a root made here.
async fn server_over_https(instance: &str) -> Env {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (root, cert, key) =
        sprites_server::http::tls::store::from_own_root(&["localhost"]).unwrap();
    let file = |name: &str, pem: String| {
        let path = home.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let tls = sprites_server::http::tls::TlsSettings {
        domain: "localhost".into(),
        certificates: sprites_server::http::tls::Certificates::Given {
            chain: file("cert.pem", cert),
            key: file("key.pem", key),
        },
    };
    let root = file("root.pem", root);
    let url = format!("sqlite://{}", home.path().join("cli.db").display());
    let host = vmhost::testing::host(instance).await;
    let public = work.path().to_path_buf();
    let (base, state) =
        sprites_server::start_local_tls(Arc::new(host), &url, Settings::default(), public, tls)
            .await
            .unwrap();
    with_user(base, state, home, work, Some(root)).await
}

/// The user `cli` and their token on the server at `base`.
async fn with_user(
    base: String,
    state: AppState,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    root: Option<std::path::PathBuf>,
) -> Env {
    let db = state.db.clone();
    let user = accounts::create_user(&db, "cli@example.com", "cli", "a long password")
        .await
        .unwrap();
    let token = accounts::create_token(&db, &user.id, &user.org_id, "cli")
        .await
        .unwrap();
    Env {
        base,
        token,
        home,
        work,
        state,
        root,
    }
}

impl Env {
    /// Runs `sprite ARGS` with `stdin`, in the work directory.
    async fn sprite(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sprite"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(root) = &self.root {
            cmd.env("SSL_CERT_FILE", root);
        }
        let stdin = stdin.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&stdin).unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.sprite(args, b"").await;
        assert!(
            out.status.success(),
            "sprite {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_drives_a_sprite_from_the_command_line() {
    let env = server("t-cli").await;
    let out = env
        .sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("as cli"));
    assert_eq!(
        mode(&env.home.path().join("sprites/config.json")),
        0o600,
        "the token file is private"
    );

    assert!(env.ok(&["create", "demo"]).await.contains("Created demo"));
    env.ok(&["use", "demo"]).await;
    assert_eq!(
        std::fs::read_to_string(env.work.path().join(".sprite")).unwrap(),
        "demo\n"
    );

    // exec: output, exit code, stdin, env and dir.
    let out = env
        .sprite(
            &["exec", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"],
            b"",
        )
        .await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = env
        .sprite(
            &[
                "x",
                "--env",
                "A=b",
                "--dir",
                "/tmp",
                "--",
                "sh",
                "-c",
                "tr a-z A-Z; echo $A $(pwd)",
            ],
            b"piped\n",
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED\nb /tmp\n");

    // checkpoints, diff, restore, fork.
    env.ok(&["x", "--", "sh", "-c", "echo one > /root/f"]).await;
    assert_eq!(
        env.ok(&["checkpoint", "create", "-m", "first"])
            .await
            .trim(),
        "v0"
    );
    assert!(env.ok(&["checkpoint", "list"]).await.contains("first"));
    env.ok(&["x", "--", "sh", "-c", "echo two > /root/f"]).await;
    assert!(env
        .ok(&["checkpoint", "diff", "v0"])
        .await
        .contains("M /root/f"));
    env.ok(&["restore", "v0"]).await;
    assert_eq!(env.ok(&["x", "--", "cat", "/root/f"]).await, "one\n");
    env.ok(&["fork", "demo-b", "--from", "v0"]).await;
    let list = env.ok(&["list"]).await;
    assert!(list.contains("demo ") && list.contains("demo-b"), "{list}");
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--json"]).await).unwrap();
    assert_eq!(listed["sprites"].as_array().unwrap().len(), 2);
    assert!(env
        .ok(&["url"])
        .await
        .starts_with("http://demo-cli.localhost:"));
    let api: serde_json::Value =
        serde_json::from_str(&env.ok(&["api", "GET", "/v1/sprites/demo-b"]).await).unwrap();
    assert_eq!(api["name"], "demo-b");

    // sleep and wake.
    assert!(env.ok(&["sleep"]).await.contains("warm"));
    assert!(env.ok(&["wake"]).await.contains("running"));

    // settings, keep-awake tasks, and what info shows of them.
    assert!(env
        .ok(&[
            "set",
            "--warm-after",
            "0",
            "--cold-after",
            "3600",
            "--url-auth",
            "public"
        ])
        .await
        .contains("sleeps warm never, cold after 1h 00m idle; URL public"));
    let kept = env
        .ok(&["keep-awake", "30m", "--reason", "a build", "--json"])
        .await;
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    let info = env.ok(&["info"]).await;
    assert!(info.contains("status       running"), "{info}");
    assert!(
        info.contains("sleeps       warm never, cold after 1h 00m"),
        "{info}"
    );
    assert!(info.contains("(a build)"), "{info}");
    env.ok(&["keep-awake", "--end", kept["id"].as_str().unwrap()])
        .await;
    assert!(!env.ok(&["info"]).await.contains("kept awake"));
    let out = env.sprite(&["keep-awake", "soon"], b"").await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("a duration like"));

    // usage, of one sprite and of the organization.
    let one: serde_json::Value =
        serde_json::from_str(&env.ok(&["usage", "demo", "--json"]).await).unwrap();
    assert_eq!(one["name"], "demo");
    assert!(one["disk_bytes"].as_u64().unwrap() > 0, "{one}");
    let table = env.ok(&["usage"]).await;
    assert!(table.starts_with("SPRITE"), "{table}");
    assert!(
        table.contains("demo-b") && table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );

    // destroy asks first; --force does not.
    let out = env.sprite(&["destroy", "demo-b"], b"no\n").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not destroyed"));
    let out = env.sprite(&["destroy", "demo-b"], b"demo-b\n").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["destroy", "demo", "--force"]).await;

    // Clear errors.
    let out = env.sprite(&["x", "-s", "missing", "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["logout"]).await;
    let out = env.sprite(&["list"], b"").await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("sprite login"));
    vmhost::testing::destroy_all(env.state.host.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_followed_and_completions_are_printed() {
    let env = server("t-cli-events").await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;

    let mut follow = Command::new(env!("CARGO_BIN_EXE_sprite"))
        .args(["events", "--json"])
        .env("XDG_CONFIG_HOME", env.home.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    });
    async fn next(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    ) -> serde_json::Value {
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30 s")
            .expect("sprite events keeps running")
    }
    // The stream is open once its first event (a resync) is printed.
    assert_eq!(next(&mut rx).await["type"], "resync");
    env.ok(&["create", "watched"]).await;
    loop {
        let e = next(&mut rx).await;
        if e["type"] == "sprite.created" {
            assert_eq!(e["sprite"], "watched");
            break;
        }
    }
    env.ok(&["sleep", "-s", "watched"]).await;
    loop {
        let e = next(&mut rx).await;
        if e["type"] == "sprite.status" && e["status"] == "warm" {
            break;
        }
    }
    follow.kill().unwrap();
    follow.wait().unwrap();

    for shell in ["bash", "zsh", "fish"] {
        let script = env.ok(&["completion", shell]).await;
        assert!(script.contains("checkpoint"), "{shell}: {script}");
    }
    vmhost::testing::destroy_all(env.state.host.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ports_are_forwarded_locally_and_over_stdio() {
    let env = server("t-cli-proxy").await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    env.ok(&["create", "fwd"]).await;
    env.ok(&["use", "fwd"]).await;
    env.ok(&[
        "x",
        "--",
        "sh",
        "-c",
        "mkdir -p /srv && cd /srv && echo proxied > index.html && \
         (setsid python3 -m http.server 8080 >/dev/null 2>&1 &)",
    ])
    .await;

    // --stdio: one connection on stdin and stdout (an SSH ProxyCommand).
    let request = b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n";
    let mut answer = String::new();
    for _ in 0..100 {
        let out = env.sprite(&["proxy", "--stdio", "8080"], request).await;
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && answer.contains("proxied") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains("proxied"), "{answer}");

    // A local port: every connection to it reaches the sprite's port.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprite"))
        .args(["proxy", "0:8080"])
        .current_dir(env.work.path())
        .env("XDG_CONFIG_HOME", env.home.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stderr)
            .read_line(&mut line)
            .unwrap();
        line.split("127.0.0.1:")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let body = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "proxied\n");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Services from the command line.
    let out = env
        .ok(&[
            "services",
            "create",
            "echoer",
            "--env",
            "WORD=sprites",
            "--",
            "sh",
            "-c",
            "echo hello $WORD; exec sleep infinity",
        ])
        .await;
    assert!(out.contains("hello sprites"), "{out}");
    let list = env.ok(&["services", "list"]).await;
    assert!(
        list.starts_with("echoer") && list.contains("running"),
        "{list}"
    );
    assert!(env
        .ok(&["services", "logs", "echoer"])
        .await
        .contains("hello sprites"));
    let stopped = env
        .ok(&["services", "stop", "echoer", "--timeout", "1s"])
        .await;
    assert!(stopped.contains("[stopped]"), "{stopped}");
    env.ok(&["services", "delete", "echoer"]).await;
    assert_eq!(env.ok(&["services", "list"]).await.trim(), "No services.");
    let out = env.sprite(&["services", "start", "nope"], b"").await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("service nope does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing listening there: a clear error.
    let out = env.sprite(&["proxy", "--stdio", "9"], b"").await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port 9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vmhost::testing::destroy_all(env.state.host.as_ref()).await;
}

/// `sprite ARGS` on a pseudo-terminal of 30x100, as a person runs it.
struct OnPty {
    child: std::process::Child,
    master: std::fs::File,
    seen: String,
}

impl Env {
    fn on_pty(&self, args: &[&str]) -> OnPty {
        use std::os::fd::{AsRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let ws = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sprite"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let flags =
            nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(pty.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        OnPty {
            child,
            master: std::fs::File::from(pty.master),
            seen: String::new(),
        }
    }
}

impl OnPty {
    fn type_in(&mut self, keys: &[u8]) {
        use std::io::Write;
        self.master.write_all(keys).unwrap();
    }

    /// Reads the screen until `needle` shows up (20 s at most).
    async fn wait_for(&mut self, needle: &str) {
        use std::io::Read;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "waited for {needle:?}, saw {:?}",
                        self.seen
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }

    async fn exit_code(mut self) -> i32 {
        let status = tokio::task::spawn_blocking(move || self.child.wait().unwrap())
            .await
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_detaches_and_its_session_is_attached_again() {
    let env = server("t-cli-console").await;
    let out = env
        .sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    assert!(out.status.success());
    env.ok(&["create", "term"]).await;
    env.ok(&["use", "term"]).await;

    let mut console = env.on_pty(&["console"]);
    console.type_in(b"stty size; echo hello-$((6*7))\r");
    console.wait_for("hello-42").await;
    assert!(
        console.seen.contains("30 100"),
        "the terminal size reached the sprite: {:?}",
        console.seen
    );
    console.type_in(&[0x1c]); // Ctrl+\
    console.wait_for("Detached").await;
    assert_eq!(console.exit_code().await, 0);

    let list = env.ok(&["sessions", "list"]).await;
    let line = list
        .lines()
        .find(|l| l.contains("bash -l"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("running") && line.contains("tty"), "{line}");
    let id = line.split_whitespace().next().unwrap().to_string();

    let mut again = env.on_pty(&["sessions", "attach", &id]);
    again.wait_for("hello-42").await; // replayed
    again.type_in(b"exit 7\r");
    assert_eq!(again.exit_code().await, 7);
    vmhost::testing::destroy_all(env.state.host.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_are_listed_used_saved_and_imported_from_the_command_line() {
    let gallery = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/templates");
    let settings = Settings {
        templates: sprites_server::domain::templates::Catalog::load(&gallery, "unused").unwrap(),
        ..Default::default()
    };
    let env = server_with("t-cli-tpl", settings).await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    let mut list = String::new();
    for _ in 0..600 {
        list = env.ok(&["templates", "list"]).await;
        if !list.contains('(') {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        list.contains("hello") && list.contains("Hello page"),
        "{list}"
    );

    env.ok(&["create", "page", "--template", "hello"]).await;
    let page = env
        .ok(&["-s", "page", "exec", "cat", "/root/site/index.html"])
        .await;
    assert_eq!(page, "<h1>Hello from the template</h1>\n");

    env.ok(&[
        "-s",
        "page",
        "exec",
        "sh",
        "-c",
        "echo mine > /root/mine.txt",
    ])
    .await;
    env.ok(&["-s", "page", "checkpoint", "create", "-m", "start"])
        .await;
    let saved = env
        .ok(&[
            "-s",
            "page",
            "templates",
            "save",
            "mine",
            "--checkpoint",
            "v0",
            "--title",
            "My start",
        ])
        .await;
    assert!(
        saved.contains("sprite create NAME --template mine"),
        "{saved}"
    );
    env.ok(&["create", "copy", "-t", "mine"]).await;
    assert_eq!(
        env.ok(&["-s", "copy", "exec", "cat", "/root/mine.txt"])
            .await,
        "mine\n"
    );

    // A directory goes up as an archive made on the fly.
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/motd"), "from a directory\n").unwrap();
    let dir = root.path().to_str().unwrap();
    let imported = env
        .ok(&["templates", "import", "tiny", dir, "--title", "Tiny"])
        .await;
    assert!(imported.contains("--template tiny"), "{imported}");
    env.ok(&["create", "small", "-t", "tiny"]).await;
    assert_eq!(
        env.ok(&["-s", "small", "exec", "/bin/busybox", "cat", "/etc/motd"])
            .await,
        "from a directory\n"
    );
    // A named pipe in it is refused, in words.
    nix::unistd::mkfifo(&root.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = env
        .sprite(&["templates", "import", "piped", dir], b"")
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("named pipes are not allowed"), "{err}");

    let list = env.ok(&["templates", "list"]).await;
    assert!(
        list.contains("mine") && list.contains("tiny") && !list.contains("piped"),
        "{list}"
    );
    env.ok(&["templates", "delete", "mine"]).await;
    env.ok(&["templates", "delete", "tiny"]).await;
    assert!(!env.ok(&["templates", "list"]).await.contains("mine"));
    vmhost::testing::destroy_all(env.state.host.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_in_a_sprite_kept_in_the_object_store_says_how_far_it_came_back() {
    let home = tempfile::tempdir().unwrap();
    let store = std::env::var("SPRITES_TEST_OBJECT_STORE")
        .expect("SPRITES_TEST_OBJECT_STORE is not set: run scripts/test, which starts Garage");
    let key = vmhost::replica::ReplicaKey::load_or_create(&home.path().join("replica.key"))
        .unwrap()
        .0;
    let bucket = vmhost::replica::Bucket::open(
        &vmhost::replica::BucketConfig {
            url: format!("{store}/cli-{}-{}", std::process::id(), vmhost::now_ms()),
            ..Default::default()
        },
        &key,
    )
    .unwrap();
    let mut cfg = vmhost::testing::config("t-cli-cold");
    cfg.bucket = Some(std::sync::Arc::new(bucket));
    let host = vmhost::testing::host_with(cfg).await;
    let url = format!("sqlite://{}", home.path().join("cli.db").display());
    let work = tempfile::tempdir().unwrap();
    let (base, state) = start_local(
        Arc::new(host),
        &url,
        Settings::default(),
        work.path().to_path_buf(),
    )
    .await
    .unwrap();
    let env = with_user(base, state, home, work, None).await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    env.ok(&["create", "cold"]).await;
    let sum = env
        .ok(&[
            "x",
            "-s",
            "cold",
            "--",
            "sh",
            "-c",
            "head -c 150000000 /dev/urandom > /root/big && sha256sum /root/big",
        ])
        .await;
    // Asleep cold, then only in the object store.
    env.ok(&["sleep", "-s", "cold", "--cold"]).await;
    let host = &env.state.host;
    let name = host.list().await.unwrap()[0].name.parse().unwrap();
    host.evict(&name).await.unwrap();

    let out = env
        .sprite(&["x", "-s", "cold", "--", "sha256sum", "/root/big"], b"")
        .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), sum);
    assert!(
        said.contains("cold is coming back from the object store:") && said.contains(" of 1"),
        "{said}"
    );
    vmhost::testing::destroy_all(host.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_policy_is_edited_from_the_command_line() {
    use sprites_wire::policy::{NetworkPolicy, PolicyRule};
    let env = server("t-cli-policy").await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    env.ok(&["create", "guarded"]).await;
    env.ok(&["use", "guarded"]).await;
    assert!(env.ok(&["policy"]).await.contains("whole internet"));

    env.ok(&["policy", "allow", "github.com", "*.npmjs.org"])
        .await;
    env.ok(&["policy", "defaults"]).await;
    let shown = env.ok(&["policy", "deny", "*"]).await;
    assert!(shown.contains("allow   *.npmjs.org"), "{shown}");
    assert!(shown.contains("include defaults"), "{shown}");
    let json = env.ok(&["--json", "policy", "show"]).await;
    let policy: NetworkPolicy = serde_json::from_str(&json).unwrap();
    assert_eq!(policy.rules.len(), 4);
    assert_eq!(policy.rules[3], PolicyRule::deny("*"));

    // The sprite's resolver is under it: its file inside says so.
    let inside = env
        .ok(&["exec", "--", "cat", vmhost::sprite::POLICY_FILE])
        .await;
    assert_eq!(
        serde_json::from_str::<NetworkPolicy>(&inside).unwrap(),
        policy
    );

    // A bad name: the server's sentence, nothing changed.
    let out = env.sprite(&["policy", "allow", "not a name"], b"").await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a domain name"), "{err}");
    let out = env
        .sprite(&["policy", "remove", "never.example"], b"")
        .await;
    assert!(!out.status.success());

    env.ok(&["policy", "remove", "github.com"]).await;
    let json = env.ok(&["--json", "policy"]).await;
    assert_eq!(
        serde_json::from_str::<NetworkPolicy>(&json)
            .unwrap()
            .rules
            .len(),
        3
    );

    // A whole policy from a file, then none.
    let file = env.work.path().join("policy.json");
    std::fs::write(
        &file,
        r#"{"rules":[{"domain":"pypi.org","action":"allow"}]}"#,
    )
    .unwrap();
    env.ok(&["policy", "set", file.to_str().unwrap()]).await;
    assert_eq!(env.ok(&["policy"]).await.trim(), "allow   pypi.org");
    let out = env.sprite(&["policy", "set", "-"], b"{\"rules\": 3}").await;
    assert!(!out.status.success());
    env.ok(&["policy", "clear"]).await;
    assert!(env.ok(&["policy"]).await.contains("whole internet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sprite_is_checked_and_restarted_from_the_command_line() {
    let env = server("t-cli-restart").await;
    env.sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    env.ok(&["create", "again"]).await;
    env.ok(&["use", "again"]).await;
    env.ok(&["exec", "--", "sh", "-c", "echo kept > /root/note"])
        .await;
    let check = env.ok(&["check"]).await;
    assert!(
        check.starts_with("again is healthy (answered in"),
        "{check}"
    );
    let restarted = env.ok(&["restart"]).await;
    assert!(restarted.contains("its disk kept"), "{restarted}");
    assert_eq!(env.ok(&["exec", "--", "cat", "/root/note"]).await, "kept\n");
    let upgraded = env.ok(&["upgrade"]).await;
    assert!(
        upgraded.contains("runs the host's sprite-init already"),
        "{upgraded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_speaks_https_to_a_server_with_its_own_certificate() {
    let env = server_over_https("t-cli-https").await;
    assert!(env.base.starts_with("https://localhost:"), "{}", env.base);
    let login = env
        .sprite(&["login", "--url", &env.base], env.token.as_bytes())
        .await;
    assert!(login.status.success(), "{login:?}");
    env.ok(&["create", "secure"]).await;
    env.ok(&["use", "secure"]).await;
    assert_eq!(
        env.ok(&["exec", "--", "echo", "over", "tls"]).await,
        "over tls\n"
    );
    let url = env.ok(&["url"]).await;
    assert!(url.starts_with("https://secure-cli.localhost:"), "{url}");
    // Without the root, the CLI refuses the server's certificate.
    let mut untrusting = std::process::Command::new(env!("CARGO_BIN_EXE_sprite"));
    untrusting
        .args(["list"])
        .env("XDG_CONFIG_HOME", env.home.path())
        .env("SSL_CERT_FILE", env.home.path().join("cli.db"));
    let out = tokio::task::spawn_blocking(move || untrusting.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
}
