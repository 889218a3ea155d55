// The official JavaScript SDK (@fly/sprites from npm) against our server.
// scripts/test runs it under Node 24 with SPRITES_URL and SPRITES_TOKEN set,
// after the Python SDK tier, against the same server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpritesClient } from '@fly/sprites';

const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_URL });

test('create, get, list, update and delete a sprite', async () => {
  const sprite = await client.createSprite('js-one', { labels: ['js'] });
  try {
    assert.equal(sprite.name, 'js-one');
    const got = await client.getSprite('js-one');
    assert.equal(got.name, 'js-one');
    assert.match(got.version, /^\d+\.\d+\.\d+/);
    assert.ok(got.lastRunningAt instanceof Date && !isNaN(got.lastRunningAt), String(got.lastRunningAt));
    const list = await client.listSprites({ prefix: 'js-' });
    assert.deepEqual(list.sprites.map((s) => s.name), ['js-one']);
    const updated = await client.updateSprite('js-one', { labels: ['a', 'b'] });
    assert.deepEqual(updated.labels, ['a', 'b']);
    // The same through the sprite's own handle, and the list walked whole.
    const again = await client.sprite('js-one').update({ labels: ['c'] });
    assert.deepEqual(again.labels, ['c']);
    await client.sprite('js-one').updateURLSettings({ auth: 'public' });
    assert.equal((await client.getSprite('js-one')).urlSettings?.auth, 'public');
    assert.deepEqual((await client.listAllSprites('js-one')).map((s) => s.name), ['js-one']);
    assert.equal(list.runningLimit ?? null, null, 'no limit set on this server');
  } finally {
    await client.deleteSprite('js-one');
  }
  await assert.rejects(client.getSprite('js-one'));
});

test('a sprite made with an environment gives it to every command', async () => {
  const made = await client.createSprite('js-env', { environment: { GREETING: 'made with it', Mixed_case: 'kept' } });
  const sprite = client.sprite('js-env');
  try {
    assert.deepEqual(made.environment, { GREETING: 'made with it', Mixed_case: 'kept' });
    assert.deepEqual((await client.getSprite('js-env')).environment, made.environment);
    const { stdout } = await sprite.execFile('sh', ['-c', 'echo "$GREETING/$Mixed_case"']);
    assert.equal(String(stdout), 'made with it/kept\n');
    // A command's own variables win.
    const own = await sprite.execFile('sh', ['-c', 'echo $GREETING'], { env: { GREETING: 'its own' } });
    assert.equal(String(own.stdout), 'its own\n');
  } finally {
    await client.deleteSprite('js-env');
  }
  await assert.rejects(client.createSprite('js-env-bad', { environment: { 'A=B': 'x' } }));
});

test('restart keeps the disk, and a check says the sprite answers', async () => {
  await client.createSprite('js-restart');
  const sprite = client.sprite('js-restart');
  try {
    await sprite.execFile('sh', ['-c', 'echo kept > /root/note; sleep 600 >/dev/null 2>&1 &']);
    const restarted = await client.restartSprite('js-restart');
    assert.equal(restarted.spriteName, 'js-restart');
    assert.ok(restarted.machineId && restarted.message, JSON.stringify(restarted));
    const { stdout } = await sprite.execFile('cat', ['/root/note']);
    assert.equal(String(stdout), 'kept\n');
    // The sleep started before the restart is gone with the old processes.
    const left = await sprite.execFile('sh', ['-c', 'grep -lx sleep /proc/[0-9]*/comm 2>/dev/null | wc -l']);
    assert.equal(String(left.stdout).trim(), '0');
    // Its init is the host's already: an upgrade leaves its processes be.
    await sprite.execFile('sh', ['-c', 'sleep 600 >/dev/null 2>&1 &']);
    await client.upgradeSprite('js-restart');
    await sprite.upgrade();
    const kept = await sprite.execFile('sh', ['-c', 'grep -lx sleep /proc/[0-9]*/comm 2>/dev/null | wc -l']);
    assert.equal(String(kept.stdout).trim(), '1');
    // The sprite's own handle restarts and checks it too.
    const again = await sprite.restart();
    assert.equal(again.spriteName, 'js-restart');
    assert.equal((await sprite.check()).status, 'healthy');
    const check = await client.checkSprite('js-restart');
    assert.equal(check.status, 'healthy');
    assert.equal(typeof check.elapsed, 'number');
    assert.ok(!isNaN(check.checkedAt), String(check.checkedAt));
  } finally {
    await client.deleteSprite('js-restart');
  }
});

// The response code the sprite's resolver gives for a name's A record.
const RCODE = `
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[1].split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(q, ("127.0.0.53", 53))
print(s.recv(512)[3] & 15)
`;

test('a network policy is read, replaced and in force at once', async () => {
  await client.createSprite('js-policy');
  const sprite = client.sprite('js-policy');
  try {
    assert.deepEqual(await sprite.getNetworkPolicy(), { rules: [] });
    const policy = { rules: [{ domain: '*.npmjs.org', action: 'allow' }, { include: 'defaults' }, { domain: '*', action: 'deny' }] };
    await sprite.updateNetworkPolicy(policy);
    assert.deepEqual(await sprite.getNetworkPolicy(), policy);
    const refused = await sprite.execFile('python3', ['-c', RCODE, 'example.com']);
    assert.equal(String(refused.stdout).trim(), '5');
    await assert.rejects(sprite.updateNetworkPolicy({ rules: [{ domain: 'x', action: 'block' }] }), /Invalid policy/);
    assert.deepEqual(await sprite.getNetworkPolicy(), policy);
    await sprite.updateNetworkPolicy({ rules: [] });
    const open = await sprite.execFile('python3', ['-c', RCODE, 'example.com']);
    assert.notEqual(String(open.stdout).trim(), '5');
  } finally {
    await client.deleteSprite('js-policy');
  }
});

// The next event of a watcher that satisfies `want` (10 s at most).
async function nextEvent(watcher, want) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const e = await Promise.race([watcher.next(), new Promise((r) => setTimeout(() => r(undefined), deadline - Date.now()))]);
    if (e === undefined || e === null) break;
    if (want(e)) return e;
  }
  throw new Error('no such event within 10 s');
}

test('the resources policy: a memory limit read, in force at once, and cleared', async () => {
  await client.createSprite('js-resources');
  const sprite = client.sprite('js-resources');
  const grab = ['-c', 'python3 -c "b = bytearray(300 << 20)"; echo $?'];
  try {
    assert.deepEqual(await sprite.getResourcesPolicy(), { memory: { limitMB: 4096, autoscale: false } });
    await sprite.updateResourcesPolicy({ memory: { limitMB: 128 } });
    assert.equal((await sprite.getResourcesPolicy()).memory.limitMB, 128);
    // The running sprite is under it: 300 MiB cannot be had.
    assert.equal(String((await sprite.execFile('sh', grab)).stdout).trim(), '137');
    await assert.rejects(sprite.updateResourcesPolicy({ memory: { limitMB: 8 } }), /from 64/);
    await assert.rejects(sprite.updateResourcesPolicy({ memory: { limitMB: 512, autoscale: true } }), /autoscale/);
    await sprite.deleteResourcesPolicy();
    assert.equal((await sprite.getResourcesPolicy()).memory.limitMB, 4096);
    assert.equal(String((await sprite.execFile('sh', grab)).stdout).trim(), '0');
  } finally {
    await client.deleteSprite('js-resources');
  }
});

test('the privileges policy: read, narrowed with a restart onto it, refused beyond, cleared', async () => {
  await client.createSprite('js-privileges');
  const sprite = client.sprite('js-privileges');
  const nnp = ['-c', "grep NoNewPrivs /proc/self/status | tr -d '[:space:]'"];
  try {
    assert.deepEqual(await sprite.getPrivilegesPolicy(), {});
    await sprite.updatePrivilegesPolicy({ profile: 'minimal', devices: ['/dev/net/tun'], noNewPrivileges: true });
    assert.deepEqual(await sprite.getPrivilegesPolicy(), { profile: 'minimal', devices: ['/dev/net/tun'], noNewPrivileges: true });
    assert.equal(String((await sprite.execFile('sh', nnp)).stdout), 'NoNewPrivs:1');
    await assert.rejects(sprite.updatePrivilegesPolicy({ profile: 'privileged' }), /not offered/);
    await assert.rejects(sprite.updatePrivilegesPolicy({ devices: ['/dev/kvm'] }), /only \/dev\/net\/tun/);
    await sprite.deletePrivilegesPolicy();
    assert.deepEqual(await sprite.getPrivilegesPolicy(), {});
    assert.equal(String((await sprite.execFile('sh', nnp)).stdout), 'NoNewPrivs:0');
  } finally {
    await client.deleteSprite('js-privileges');
  }
});

test('watchers: ports opened and closed, port events of a command, sprite states', async () => {
  await client.createSprite('js-watch');
  const sprite = client.sprite('js-watch');
  const states = await client.watchSprites({ prefix: 'js-watch' });
  try {
    const first = await states.next();
    assert.equal(first.name, 'js-watch');
    assert.equal(first.status, 'running');
    assert.ok(first.organization.running >= 1, JSON.stringify(first));

    const ports = await sprite.watchPorts();
    const list = await ports.next();
    assert.equal(list.type, 'port_list');
    assert.ok(Array.isArray(list.ports));
    await sprite.execFile('sh', ['-c', '(setsid python3 -m http.server 8125 >/dev/null 2>&1 &)']);
    const opened = await nextEvent(ports, (e) => e.type === 'port_opened' && e.port === 8125);
    assert.equal(opened.address, '0.0.0.0');
    assert.ok(opened.pid > 0, JSON.stringify(opened));

    // A command's socket tells of the ports it opens, as messages (the SDK
    // hands text messages on in terminal mode, as the CLI's console runs).
    const messages = [];
    const cmd = sprite.spawn('sh', ['-c', 'python3 -m http.server 8126 >/dev/null 2>&1 & sleep 2; kill $!; sleep 1'], { tty: true });
    cmd.on('message', (m) => messages.push(typeof m === 'string' ? JSON.parse(m) : m));
    assert.equal(await cmd.wait(), 0);
    assert.ok(messages.some((m) => m.type === 'port_opened' && m.port === 8126), JSON.stringify(messages));
    assert.ok(messages.some((m) => m.type === 'port_closed' && m.port === 8126), JSON.stringify(messages));

    await sprite.execFile('sh', ['-c', 'pkill -f "[h]ttp.server 8125"; true']);
    await nextEvent(ports, (e) => e.type === 'port_closed' && e.port === 8125);
    ports.close();

    // The list stream follows the sprite to sleep.
    // (The SDK has no sleep of its own: the API's.)
    const asleep = await fetch(`${process.env.SPRITES_URL}/v1/sprites/js-watch/sleep`, {
      method: 'POST',
      headers: { authorization: `Bearer ${process.env.SPRITES_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cold: true }),
    });
    assert.equal(asleep.status, 200);
    const slept = await nextEvent(states, (e) => e.name === 'js-watch' && e.status === 'cold');
    assert.ok(slept.timestamp instanceof Date && !isNaN(slept.timestamp));
  } finally {
    states.close();
    await client.deleteSprite('js-watch');
  }
});

test('exec, exit codes, env, cwd and a terminal', async () => {
  await client.createSprite('js-exec');
  const sprite = client.sprite('js-exec');
  try {
    const { stdout } = await sprite.execFile('echo', ['hello', 'sprite']);
    assert.equal(String(stdout), 'hello sprite\n');

    await assert.rejects(sprite.execFile('sh', ['-c', 'echo out; exit 3']), (err) => {
      assert.equal(err.exitCode, 3);
      assert.equal(String(err.stdout), 'out\n');
      return true;
    });

    const r = await sprite.execFile('sh', ['-c', 'echo "$GREETING from $(pwd)"'], {
      env: { GREETING: 'hi' },
      cwd: '/tmp',
    });
    assert.equal(String(r.stdout), 'hi from /tmp\n');

    const cmd = sprite.spawn('sh', ['-c', 'tr a-z A-Z']);
    let out = '';
    cmd.stdout.on('data', (chunk) => (out += chunk));
    // Like child_process, input is written once the command has spawned.
    await new Promise((resolve, reject) => {
      cmd.once('spawn', resolve);
      cmd.once('error', reject);
    });
    cmd.stdin.end('piped through\n');
    assert.equal(await cmd.wait(), 0);
    assert.equal(out, 'PIPED THROUGH\n');

    const t = await sprite.execFile('sh', ['-c', 'tty; stty size'], { tty: true, rows: 30, cols: 100 });
    assert.match(String(t.stdout), /\/dev\/pts\//);
    assert.match(String(t.stdout), /30 100/);
  } finally {
    await client.deleteSprite('js-exec');
  }
});

test('control mode: operations one after another over one connection', async () => {
  const ctl = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_URL, controlMode: true });
  await ctl.createSprite('js-control');
  const sprite = ctl.sprite('js-control');
  try {
    // The SDK's control connection used directly, so no fallback to the
    // exec route could hide a failure.
    const cc = await sprite.getControlConnection();
    for (const word of ['one', 'two']) {
      const op = await cc.startOp('exec', { cmd: ['sh', '-c', 'read x; echo got $x; echo e >&2; exit 4'], stdin: true });
      const out = [];
      const err = [];
      op.on('stdout', (d) => out.push(d));
      op.on('stderr', (d) => err.push(d));
      op.write(Buffer.from(`${word}\n`));
      op.sendEOF();
      assert.equal(await op.wait(), 4);
      assert.equal(Buffer.concat(out).toString(), `got ${word}\n`);
      assert.equal(Buffer.concat(err).toString(), 'e\n');
      cc.clearOpConn();
    }
    const failed = await cc.startOp('exec', {});
    await assert.rejects(new Promise((resolve, reject) => {
      failed.on('error', reject);
      failed.on('close', resolve);
    }), /cmd/);
    // exec and execFile in control mode, with env and a working directory.
    for (let i = 0; i < 3; i++) {
      const { stdout } = await sprite.execFile('sh', ['-c', `echo run ${i} $A $(pwd)`], { env: { A: 'a' }, cwd: '/tmp' });
      assert.equal(String(stdout), `run ${i} a /tmp\n`);
    }
    await assert.rejects(sprite.execFile('sh', ['-c', 'exit 5']), (e) => e.exitCode === 5);
    assert.ok(sprite.hasControlConnection());
  } finally {
    sprite.closeControlConnection();
    await ctl.deleteSprite('js-control');
  }
});

test('checkpoints', async () => {
  await client.createSprite('js-ckpt');
  const sprite = client.sprite('js-ckpt');
  try {
    await sprite.execFile('sh', ['-c', 'echo before > /root/state']);
    const messages = [];
    for await (const m of await sprite.createCheckpoint('from js')) messages.push(m);
    assert.equal(messages.at(-1).type, 'complete');
    const list = await sprite.listCheckpoints();
    assert.equal(list.length, 1);
    assert.equal(list[0].comment, 'from js');
  } finally {
    await client.deleteSprite('js-ckpt');
  }
});

test('restore, get and delete checkpoints', async () => {
  await client.createSprite('js-restore');
  const sprite = client.sprite('js-restore');
  try {
    await sprite.execFile('sh', ['-c', 'echo before > /root/state']);
    for await (const _ of await sprite.createCheckpoint('before')) { /* drain */ }
    await sprite.execFile('sh', ['-c', 'echo after > /root/state']);
    const [first] = await sprite.listCheckpoints();
    const got = await sprite.getCheckpoint(first.id);
    assert.equal(got.comment, 'before');
    const lines = [];
    for await (const m of await sprite.restoreCheckpoint(first.id)) lines.push(m);
    assert.equal(lines.at(-1).type, 'complete');
    const { stdout } = await sprite.execFile('cat', ['/root/state']);
    assert.equal(String(stdout), 'before\n');
    // The restore kept the state before it as an automatic checkpoint
    // taken on top of the first; all are whole.
    const all = await sprite.listCheckpoints();
    const kept = all.find((c) => c.id !== first.id);
    assert.ok(kept, JSON.stringify(all));
    assert.equal(kept.isAuto, true);
    assert.equal(kept.sourceId, first.id);
    assert.equal(first.isAuto, false);
    assert.ok(all.every((c) => c.health === ''), JSON.stringify(all));
  } finally {
    await client.deleteSprite('js-restore');
  }
});

test('the filesystem', async () => {
  await client.createSprite('js-fs');
  const sprite = client.sprite('js-fs');
  const fs = sprite.filesystem('/srv');
  try {
    await fs.writeFile('app/hello.txt', 'hello\n');
    assert.equal(await fs.readFile('app/hello.txt', 'utf8'), 'hello\n');
    await fs.appendFile('app/hello.txt', 'again\n');
    assert.equal(await fs.readFile('app/hello.txt', 'utf8'), 'hello\nagain\n');
    await fs.writeJSON('app/data.json', { n: 1 });
    assert.deepEqual(await fs.readJSON('app/data.json'), { n: 1 });
    assert.deepEqual((await fs.readdir('app')).sort(), ['data.json', 'hello.txt']);
    const st = await fs.stat('app/hello.txt');
    assert.equal(st.size, 12);
    assert.ok(st.isFile());
    await fs.mkdir('made/deep', { recursive: true });
    await fs.rename('app/hello.txt', 'made/deep/moved.txt');
    await fs.copyFile('made/deep/moved.txt', 'made/copy.txt');
    // A copy keeps owner and mode only with preserveAttrs.
    await fs.chown('made/deep/moved.txt', { uid: 1000, gid: 1000 });
    await fs.chmod('made/deep/moved.txt', 0o640);
    await fs.copyFile('made/deep/moved.txt', 'made/kept.txt', { preserveAttrs: true });
    await fs.copyFile('made/deep/moved.txt', 'made/fresh.txt', { asRoot: true });
    const owners = await sprite.execFile('stat', ['-c', '%u %a', '/srv/made/kept.txt', '/srv/made/fresh.txt']);
    assert.equal(String(owners.stdout), '1000 640\n0 640\n');
    // Files larger than one request could carry before (64 MiB) go both ways.
    const big = Buffer.alloc(70 << 20, 7);
    await fs.writeFile('big.bin', big);
    const back = await fs.readFile('big.bin');
    assert.equal(back.length, big.length);
    assert.ok(back.equals(big));
    await fs.rm('big.bin');
    await fs.chmod('made/copy.txt', 0o600);
    assert.equal((await fs.stat('made/copy.txt')).mode & 0o777, 0o600);
    assert.equal(await fs.exists('app/hello.txt'), false);
    assert.equal(await fs.exists('made/deep/moved.txt'), true);
    await fs.rm('made', { recursive: true });
    assert.equal(await fs.exists('made'), false);
    // The sprite sees the same files.
    const { stdout } = await sprite.execFile('cat', ['/srv/app/data.json']);
    assert.deepEqual(JSON.parse(String(stdout)), { n: 1 });
    // Escaping the sprite's root is not possible.
    await assert.rejects(fs.readFile('/../../../etc/shadow-of-the-host', 'utf8'));
  } finally {
    await client.deleteSprite('js-fs');
  }
});

test('watching files: changes from the terminal and the API arrive as events', async () => {
  await client.createSprite('js-watch');
  const sprite = client.sprite('js-watch');
  const fs = sprite.filesystem('/srv');
  try {
    await fs.mkdir('site', { recursive: true });
    const watcher = await fs.watch('site', { recursive: true });
    const seen = [];
    // Reads events until one matches `want`, or fails after 10 s.
    const until = async (want) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const e = await Promise.race([watcher.next(), new Promise((r) => setTimeout(() => r('wait'), 500))]);
        if (e === 'wait') continue;
        assert.ok(e, `the stream ended; seen ${JSON.stringify(seen)}`);
        seen.push(e);
        if (want(e)) return e;
      }
      throw new Error(`no such event; seen ${JSON.stringify(seen)}`);
    };
    await until((e) => e.type === 'subscribed' && e.paths[0] === '/srv/site');
    await sprite.execFile('sh', ['-c', 'mkdir /srv/site/blog && echo hi > /srv/site/blog/post.md']);
    const dir = await until((e) => e.type === 'event' && e.path === '/srv/site/blog');
    assert.equal(dir.event, 'create');
    assert.equal(dir.isDir, true);
    // In the folder made just now: the watch follows it (a file written
    // before the folder's watch was added is reported as made, with its size).
    const wrote = await until((e) => e.type === 'event' && e.path === '/srv/site/blog/post.md' && e.size === 3);
    assert.ok(['create', 'write'].includes(wrote.event), wrote.event);
    assert.ok(!Number.isNaN(Date.parse(wrote.timestamp)));
    await fs.chmod('site/blog/post.md', 0o600);
    await until((e) => e.event === 'chmod' && e.path === '/srv/site/blog/post.md');
    await fs.rename('site/blog/post.md', 'site/blog/renamed.md');
    await until((e) => e.event === 'rename' && e.path === '/srv/site/blog/post.md');
    await until((e) => e.event === 'create' && e.path === '/srv/site/blog/renamed.md');
    await fs.rm('site/blog/renamed.md');
    await until((e) => e.event === 'remove' && e.path === '/srv/site/blog/renamed.md');
    // Nothing outside the watched folder.
    await sprite.execFile('sh', ['-c', 'echo elsewhere > /srv/other.txt && echo last > /srv/site/last.txt']);
    await until((e) => e.path === '/srv/site/last.txt');
    assert.ok(!seen.some((e) => e.path === '/srv/other.txt'), JSON.stringify(seen));
    watcher.close();
  } finally {
    await client.deleteSprite('js-watch');
  }
});

test('sessions: list, attach and kill', async () => {
  await client.createSprite('js-sess');
  const sprite = client.sprite('js-sess');
  try {
    const long = sprite.spawn('sh', ['-c', 'echo started; sleep 600'], { tty: true });
    await new Promise((resolve, reject) => {
      long.once('spawn', resolve);
      long.once('error', reject);
    });
    let sessions = [];
    for (let i = 0; i < 50 && !sessions.some((s) => s.isActive); i++) {
      sessions = await sprite.listSessions();
      if (!sessions.some((s) => s.isActive)) await new Promise((r) => setTimeout(r, 100));
    }
    const active = sessions.find((s) => s.isActive);
    assert.ok(active, JSON.stringify(sessions));
    assert.equal(active.tty, true);
    assert.match(active.command, /sleep 600/);

    // Another client joins and sees what was already printed.
    const joined = sprite.attachSession(active.id);
    let seen = '';
    joined.stdout.on('data', (chunk) => (seen += chunk));
    for (let i = 0; i < 50 && !seen.includes('started'); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(seen, /started/);

    const events = [];
    for await (const e of await sprite.killSession(active.id, 'SIGKILL')) events.push(e);
    assert.ok(events.length > 0);
    const code = await long.wait();
    assert.notEqual(code, 0);
    await joined.wait().catch(() => {});
  } finally {
    await client.deleteSprite('js-sess');
  }
});

test('exec over plain HTTP', async () => {
  await client.createSprite('js-http');
  const sprite = client.sprite('js-http');
  try {
    const r = await sprite.execFileHTTP('sh', ['-c', 'echo "$A in $(pwd)"; cat; echo err >&2'], {
      env: { A: 'b' },
      cwd: '/tmp',
      input: 'from stdin\n',
    });
    assert.equal(r.stdout, 'b in /tmp\nfrom stdin\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.exitCode, 0);
    await assert.rejects(sprite.execFileHTTP('sh', ['-c', 'exit 9']), (err) => {
      assert.equal(err.exitCode, 9);
      return true;
    });
  } finally {
    await client.deleteSprite('js-http');
  }
});

test('a local port forwarded into the sprite', async () => {
  await client.createSprite('js-proxy');
  const sprite = client.sprite('js-proxy');
  try {
    await sprite.execFile('sh', ['-c',
      'mkdir -p /srv && cd /srv && echo forwarded > index.html && (setsid python3 -m http.server 8080 >/dev/null 2>&1 &)']);
    const session = await sprite.proxyPort(0, 8080);
    const port = session.server.address().port;
    let body = '';
    for (let i = 0; i < 50 && body !== 'forwarded\n'; i++) {
      body = await fetch(`http://localhost:${port}/index.html`).then((r) => r.text()).catch(() => '');
      if (body !== 'forwarded\n') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body, 'forwarded\n');
    session.close();
  } finally {
    await client.deleteSprite('js-proxy');
  }
});

test('services', async () => {
  await client.createSprite('js-svc');
  const sprite = client.sprite('js-svc');
  try {
    await sprite.execFile('sh', ['-c', 'mkdir -p /srv && echo hello > /srv/index.html']);
    const created = [];
    for await (const e of await sprite.createService('web', {
      cmd: 'python3', args: ['-m', 'http.server', '8000'], dir: '/srv', httpPort: 8000,
    }, '1s')) created.push(e);
    assert.ok(created.some((e) => e.type === 'started'), JSON.stringify(created));
    assert.equal(created.at(-1).type, 'complete');

    const list = await sprite.listServices();
    assert.deepEqual(list.map((s) => s.name), ['web']);
    const web = await sprite.getService('web');
    assert.equal(web.httpPort, 8000);
    assert.equal(web.state.status, 'running');

    // Logs hold what it printed: a request to it, through sprite exec.
    let out = '';
    for (let i = 0; i < 50 && !out.includes('hello'); i++) {
      out = String((await sprite.execFile('sh', ['-c', 'curl -s localhost:8000/ || true'])).stdout);
      if (!out.includes('hello')) await new Promise((r) => setTimeout(r, 100));
    }
    const logs = [];
    for await (const e of await sprite.getServiceLogs('web', { lines: 50 })) logs.push(e);
    assert.ok(logs.some((e) => e.type === 'stderr' && /GET \//.test(e.data)), JSON.stringify(logs));

    const restarted = [];
    for await (const e of await sprite.restartService('web', '1s')) restarted.push(e);
    assert.ok(restarted.some((e) => e.type === 'started'), JSON.stringify(restarted));
    for await (const _ of await sprite.stopService('web', '2s')) { /* drain */ }
    assert.equal((await sprite.getService('web')).state.status, 'stopped');
    const started = [];
    for await (const e of await sprite.startService('web', '1s')) started.push(e);
    assert.ok(started.some((e) => e.type === 'started'), JSON.stringify(started));
    assert.deepEqual(started.at(-1).logFiles, { stdout: '/var/log/sprite/services/web.stdout.log', stderr: '/var/log/sprite/services/web.stderr.log' });
    // A signal reaches it; supervised, it comes back.
    const before = (await sprite.getService('web')).state.restartCount ?? 0;
    await sprite.signalService('web', 'KILL');
    let after = before;
    for (let i = 0; i < 100 && after <= before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = (await sprite.getService('web')).state.restartCount ?? 0;
    }
    assert.ok(after > before, `restarts ${before} -> ${after}`);
    for await (const _ of await sprite.stopService('web', '2s')) { /* drain */ }
    await sprite.deleteService('web');
    assert.deepEqual(await sprite.listServices(), []);
  } finally {
    await client.deleteSprite('js-svc');
  }
});
