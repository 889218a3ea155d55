"""The official Python SDK (sprites-py from PyPI) against our server.

scripts/test starts a real server on a real database and host, creates a
user with `sprites-server admin create-user`, and runs this file with
SPRITES_URL and SPRITES_TOKEN set. Exec, filesystem and checkpoint calls
join as the server grows them.
"""

import io
import os
import time

import pytest
from sprites import SpritesClient, URLSettings
from sprites.exceptions import NotFoundError, SpriteError
from sprites.types import ListOptions

BASE_URL = os.environ["SPRITES_URL"]
TOKEN = os.environ["SPRITES_TOKEN"]


@pytest.fixture
def client():
    with SpritesClient(TOKEN, base_url=BASE_URL) as c:
        yield c


def test_create_get_list_update_delete(client):
    sprite = client.create_sprite("sdk-one", labels=["sdk"], url_settings=URLSettings(auth="public"))
    try:
        assert sprite.name == "sdk-one"
        assert sprite.status == "running"
        assert sprite.labels == ["sdk"]
        assert sprite.url_settings.auth == "public"
        assert sprite.created_at is not None

        got = client.get_sprite("sdk-one")
        assert got.id == sprite.id
        assert got.organization_name == "sdk"

        listed = client.list_sprites(ListOptions(prefix="sdk-"))
        assert [s.name for s in listed.sprites] == ["sdk-one"]
        assert listed.running == 1
        assert [s.name for s in client.list_all_sprites(prefix="sdk")] == ["sdk-one"]

        client.update_sprite("sdk-one", labels=["a", "b"])
        assert client.get_sprite("sdk-one").labels == ["a", "b"]

        # Its init is the host's already: an upgrade changes nothing in it.
        sprite.run("sh", "-c", "echo kept > /root/note")
        client.upgrade_sprite("sdk-one")
        sprite.upgrade()
        assert sprite.run("cat", "/root/note", capture_output=True).stdout == b"kept\n"
    finally:
        client.delete_sprite("sdk-one")
    with pytest.raises(NotFoundError):
        client.get_sprite("sdk-one")


def test_errors_surface_as_sdk_exceptions(client):
    with pytest.raises(NotFoundError):
        client.get_sprite("never-made")
    with pytest.raises(SpriteError):
        client.create_sprite("Not A Name")
    with SpritesClient("sprt_not-a-token", base_url=BASE_URL) as bad:
        with pytest.raises(SpriteError):
            bad.list_sprites()


# The response code the sprite's resolver gives for a name's A record.
RCODE = r'''
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[1].split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(q, ("127.0.0.53", 53))
print(s.recv(512)[3] & 15)
'''


def test_network_policy_get_update_and_in_force(client):
    from sprites import policy as policy_module
    from sprites.exceptions import APIError
    from sprites.types import NetworkPolicy, PolicyRule

    s = client.create_sprite("sdk-policy")
    try:
        assert s.get_network_policy().rules == []
        rules = [
            PolicyRule(domain="pypi.org", action="allow"),
            PolicyRule(include="defaults"),
            PolicyRule(domain="*", action="deny"),
        ]
        s.update_network_policy(NetworkPolicy(rules=rules))
        assert s.get_network_policy().rules == rules
        assert policy_module.get_network_policy(s).rules == rules
        # In force inside at once: a name it does not allow is REFUSED.
        r = s.run("python3", "-c", RCODE, "example.com", capture_output=True)
        assert r.stdout.decode().strip() == "5", r.stderr
        # A bad policy is a 400 the SDK reports; the old one stays.
        with pytest.raises(APIError) as bad:
            policy_module.update_network_policy(
                s, NetworkPolicy(rules=[PolicyRule(domain="not a name", action="allow")])
            )
        assert bad.value.status_code == 400
        assert "rule 1" in str(bad.value)
        assert s.get_network_policy().rules == rules
        # No rules: the whole network again.
        policy_module.update_network_policy(s, NetworkPolicy(rules=[]))
        assert s.get_network_policy().rules == []
        r = s.run("python3", "-c", RCODE, "example.com", capture_output=True)
        assert r.stdout.decode().strip() != "5"
    finally:
        client.delete_sprite("sdk-policy")


@pytest.fixture
def sprite(client):
    s = client.create_sprite("sdk-exec")
    yield s
    client.delete_sprite("sdk-exec")


def test_exec_output_exit_codes_env_dir_and_stdin(sprite):
    r = sprite.run("echo", "hello sprite", capture_output=True)
    assert (r.returncode, r.stdout) == (0, b"hello sprite\n")

    r = sprite.run("sh", "-c", "echo out; echo err >&2; exit 3", capture_output=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")

    r = sprite.run("sh", "-c", 'echo "$GREETING from $(pwd)"', env={"GREETING": "hi"}, cwd="/tmp", capture_output=True)
    assert r.stdout == b"hi from /tmp\n"

    cmd = sprite.command("sh", "-c", "tr a-z A-Z", stdin=io.BytesIO(b"piped through\n"))
    assert cmd.output() == b"PIPED THROUGH\n"

    # Large output arrives whole.
    r = sprite.run("seq", "1", "100000", capture_output=True)
    assert r.stdout.splitlines()[-1] == b"100000"


def test_control_mode_runs_commands_over_one_connection():
    with SpritesClient(TOKEN, base_url=BASE_URL, control_mode=True) as c:
        sprite = c.create_sprite("sdk-control")
        try:
            for i in range(3):
                r = sprite.run("sh", "-c", f"echo run {i}; echo e >&2; exit {i}", capture_output=True)
                assert (r.returncode, r.stdout, r.stderr) == (i, f"run {i}\n".encode(), b"e\n")
            cmd = sprite.command("sh", "-c", "tr a-z A-Z", stdin=io.BytesIO(b"over control\n"))
            assert cmd.output() == b"OVER CONTROL\n"
            r = sprite.run("sh", "-c", "tty", tty=True, capture_output=True)
            assert b"/dev/pts/" in r.stdout
            # The SDK turns control mode off for a sprite whose /control
            # answers an HTTP error, and falls back to the exec route: it
            # never did.
            assert sprite._control_mode_supported
        finally:
            c.delete_sprite("sdk-control")


def test_exec_with_a_terminal(sprite):
    r = sprite.run("sh", "-c", "tty; stty size", tty=True, tty_rows=30, tty_cols=100, capture_output=True)
    assert r.returncode == 0
    assert b"/dev/pts/" in r.stdout
    assert b"30 100" in r.stdout


def test_sessions_are_listed_and_killed(sprite):
    from sprites.session import kill_session

    cmd = sprite.command("sh", "-c", "trap '' TERM; sleep 30", tty=True)
    import threading

    outcome = []

    def run():
        try:
            outcome.append(cmd.run())
        except Exception as e:  # the SDK raises on a non-zero exit
            outcome.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    sessions = []
    while time.monotonic() < deadline:
        sessions = [s for s in sprite.list_sessions() if "sleep 30" in s.command]
        if sessions:
            break
        time.sleep(0.1)
    assert sessions and sessions[0].tty and sessions[0].is_active

    # SIGTERM is ignored, so the session is killed once the timeout passes.
    messages = list(kill_session(sprite, sessions[0].id, "SIGTERM", 1))
    assert messages[-1].type == "complete", messages
    assert any("SIGKILL" in str(m.data) for m in messages), messages
    t.join(10)
    assert not t.is_alive()
    assert "137" in str(outcome[0]), outcome


def test_checkpoints_create_list_get_restore(sprite):
    sprite.run("sh", "-c", "echo before > /root/state")
    messages = list(sprite.create_checkpoint("before the change"))
    assert messages[-1].type == "complete", messages
    checkpoint_id = messages[-1].data

    listed = sprite.list_checkpoints()
    assert [c.id for c in listed] == [checkpoint_id]
    assert listed[0].comment == "before the change"
    assert sprite.get_checkpoint(checkpoint_id).create_time is not None

    sprite.run("sh", "-c", "echo after > /root/state")
    messages = list(sprite.restore_checkpoint(checkpoint_id))
    assert messages[-1].type == "complete", messages
    assert sprite.run("cat", "/root/state", capture_output=True).stdout == b"before\n"
    # The state before the restore was kept as a checkpoint of its own.
    assert len(sprite.list_checkpoints()) == 2


def test_filesystem(sprite):
    from sprites.exceptions import DirectoryNotEmptyError, FileNotFoundError_, IsADirectoryError_

    fs = sprite.filesystem("/srv")
    page = fs / "site" / "index.html"
    page.write_text("<h1>hello</h1>")
    assert page.read_text() == "<h1>hello</h1>"
    assert page.exists() and page.stat().size == 14
    assert sprite.run("cat", "/srv/site/index.html", capture_output=True).stdout == b"<h1>hello</h1>"
    assert (fs / "site").listdir() == ["index.html"]

    (fs / "deep" / "er").mkdir(parents=True)
    # The SDK's stat() reads the first entry of a listing, so it cannot stat
    # a directory; ask the sprite instead.
    assert sprite.run("test", "-d", "/srv/deep/er").returncode == 0

    page.copy_to(fs / "site" / "copy.html")
    (fs / "site" / "copy.html").rename(fs / "site" / "moved.html")
    assert sorted((fs / "site").listdir()) == ["index.html", "moved.html"]

    page.chmod(0o600)
    assert sprite.run("stat", "-c", "%a", "/srv/site/index.html", capture_output=True).stdout == b"600\n"

    with pytest.raises(IsADirectoryError_):
        (fs / "site").read_bytes()
    with pytest.raises(DirectoryNotEmptyError):
        (fs / "site").rmdir()
    (fs / "site").rmtree()
    assert not page.exists()
    with pytest.raises(FileNotFoundError_):
        page.read_text()

    # Past the 64 MiB one request could carry before, both ways.
    big = bytes(range(256)) * (70 << 12)
    (fs / "big.bin").write_bytes(big)
    assert (fs / "big.bin").read_bytes() == big
    (fs / "big.bin").unlink()


def test_services_create_list_log_stop_signal_and_delete(sprite):
    sprite.run("sh", "-c", "mkdir -p /srv && echo hi > /srv/index.html")
    events = list(
        sprite.create_service(
            "web", "python3", ["-m", "http.server", "8000"], http_port=8000, duration=1, dir="/srv"
        )
    )
    assert any(e.type == "started" for e in events), events
    assert events[-1].type == "complete", events
    # The whole output is also kept in files of the sprite's own disk.
    logs = "/var/log/sprite/services"
    assert events[-1].log_files == {"stdout": f"{logs}/web.stdout.log", "stderr": f"{logs}/web.stderr.log"}
    sprite.run("python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')")
    deadline = time.monotonic() + 10
    kept = b""
    while time.monotonic() < deadline and b"GET / " not in kept:
        time.sleep(0.1)
        kept = sprite.run("cat", f"{logs}/web.stderr.log", capture_output=True).stdout
    assert b"GET / " in kept, kept

    services = sprite.list_services()
    assert [s.name for s in services] == ["web"]
    web = sprite.get_service("web")
    assert web.cmd == "python3" and web.http_port == 8000 and web.dir == "/srv"
    assert web.state.status == "running" and web.state.pid
    assert web.state.started_at is not None

    # Depending on another service; the one needed cannot go first.
    list(sprite.create_service("worker", "sleep", ["infinity"], needs=["web"]))
    assert sprite.get_service("worker").needs == ["web"]

    sprite.signal_service("worker", "SIGTERM")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sprite.get_service("worker").state.restart_count < 1:
        time.sleep(0.1)
    assert sprite.get_service("worker").state.restart_count >= 1

    stopped = list(sprite.stop_service("worker", timeout=2))
    assert stopped[-1].type == "complete", stopped
    assert sprite.get_service("worker").state.status == "stopped"
    started = list(sprite.start_service("worker", duration=0.5))
    assert any(e.type == "started" for e in started), started

    sprite.delete_service("worker")
    sprite.delete_service("web")
    assert sprite.list_services() == []
