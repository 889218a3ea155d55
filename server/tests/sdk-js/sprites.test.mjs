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
    const list = await client.listSprites({ prefix: 'js-' });
    assert.deepEqual(list.sprites.map((s) => s.name), ['js-one']);
    const updated = await client.updateSprite('js-one', { labels: ['a', 'b'] });
    assert.deepEqual(updated.labels, ['a', 'b']);
  } finally {
    await client.deleteSprite('js-one');
  }
  await assert.rejects(client.getSprite('js-one'));
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
