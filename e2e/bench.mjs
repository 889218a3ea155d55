// The web app's share of the benchmark, in Chromium against a running
// server (SPRITES_URL): time from opening a workspace to a terminal that
// answers, keystroke-to-echo through the terminal's WebSocket, and the
// bytes the app ships. Prints a table (or JSON with --json).
//   node e2e/bench.mjs [--runs N] [--json]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { BASE, launch, signUp, createSprite, waitForScreen } from "./lib.mjs";

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf("--runs") + 1]) || 10;
const json = args.includes("--json");
const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const prompt = /root@[\w-]+:\S*[#$]/;

// The page notes when a key goes down, when its byte leaves on the
// terminal's WebSocket and when the next message (the echo) arrives.
const recordEchoes = () => {
  window.__echoes = [];
  window.__wire = [];
  document.addEventListener("keydown", (e) => (window.__down = e.timeStamp), true);
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener("message", () => {
        if (this.__sent !== undefined) {
          const now = performance.now();
          window.__echoes.push(now - window.__down);
          window.__wire.push(now - this.__sent);
          this.__sent = undefined;
        }
      });
    }
    send(data) {
      if (typeof data !== "string") this.__sent = performance.now();
      super.send(data);
    }
  };
};

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await context.addInitScript(recordEchoes);
const page = await context.newPage();
await signUp(page, "bench");
await createSprite(page, "bench");
await waitForScreen(page, prompt);
const workspace = page.url();

// Open to interactive: navigation start to the shell's prompt on screen.
const open = [];
for (let i = 0; i < runs + 1; i++) {
  await page.goto("about:blank");
  const t = Date.now();
  await page.goto(workspace);
  await waitForScreen(page, prompt, 60_000);
  if (i > 0) open.push(Date.now() - t);
}

// Keystroke to echo: one character at a time, each echo awaited.
await page.locator(".term:not(.hidden) .xterm").click();
await page.evaluate(() => {
  window.__echoes = [];
  window.__wire = [];
});
for (let i = 0; i < runs * 5; i++) {
  const before = await page.evaluate(() => window.__echoes.length);
  await page.keyboard.type("x");
  await page.waitForFunction((n) => window.__echoes.length > n, before);
  await page.waitForTimeout(20);
}
const echoes = await page.evaluate(() => window.__echoes);
const wire = await page.evaluate(() => window.__wire);
await page.keyboard.press("Control+U");

// The floor of an echo: the same WebSocket round trip from a bare socket
// in the same page, to a PTY that echoes in the kernel (`cat`), paced alike.
const name = decodeURIComponent(new URL(workspace).pathname.split("/").pop());
const bare = await page.evaluate(
  async ([name, n]) => {
    const ws = new WebSocket(`ws://${location.host}/v1/sprites/${encodeURIComponent(name)}/exec?cmd=cat&tty=true`);
    ws.binaryType = "arraybuffer";
    await new Promise((res) => (ws.onopen = res));
    await new Promise((res) => setTimeout(res, 300));
    const out = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const echoed = new Promise((res) => (ws.onmessage = (e) => typeof e.data !== "string" && res()));
      ws.send(new Uint8Array([120]));
      await echoed;
      out.push(performance.now() - t);
      await new Promise((res) => setTimeout(res, 20));
    }
    ws.close();
    return out;
  },
  [name, runs * 5],
);

// What the workspace page fetches with an empty cache (Monaco loads only
// the parts it needs). A second profile, signed in through the cookie.
const cold = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await cold.addCookies(await context.cookies());
const fresh = await cold.newPage();
await fresh.goto(workspace);
await waitForScreen(fresh, prompt, 60_000);
await fresh.locator(".monaco").waitFor({ state: "attached" });
await fresh.waitForTimeout(1500);
const fetched = await fresh.evaluate(() =>
  performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))
    .filter((e) => new URL(e.name).host === location.host && !e.name.includes("/v1/"))
    .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0),
);
await browser.close();

// The files the build ships at first load.
const files = readdirSync(dist);
const size = (f) => statSync(join(dist, f)).size;
const gz = (f) => gzipSync(readFileSync(join(dist, f))).length;
const wasm = files.filter((f) => f.endsWith(".wasm"));
const js = files.filter((f) => f.endsWith(".js"));
const snippets = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".js") || e.name.endsWith(".mjs")) snippets.push(p.slice(dist.length + 1));
  }
};
for (const d of ["snippets", "vendor"]) walk(join(dist, d));
const sum = (fs, f) => fs.reduce((a, x) => a + f(x), 0);
const kb = (n) => n / 1000;

const rows = [
  { operation: "IDE: open workspace to terminal", median_ms: median(open), p95_ms: p95(open), target: "in Chromium, to the shell's prompt" },
  { operation: "IDE: keystroke to echo", median_ms: median(echoes), p95_ms: p95(echoes), floor_ms: median(bare), target: "key down to echo; floor: bare WebSocket" },
  { operation: "IDE: echo on the terminal's socket", median_ms: median(wire), p95_ms: p95(wire), floor_ms: median(bare), target: "byte sent to echo; floor: bare WebSocket" },
  { operation: "IDE: wasm shipped (KB)", median_ms: kb(sum(wasm, size)), p95_ms: kb(sum(wasm, gz)), target: "size; p95 column: gzipped" },
  { operation: "IDE: JavaScript shipped (KB)", median_ms: kb(sum(js, size) + sum(snippets, size)), p95_ms: kb(sum(js, gz) + sum(snippets, gz)), target: "glue, xterm.js; p95 column: gzipped" },
  { operation: "IDE: workspace page fetches (KB)", median_ms: kb(fetched), p95_ms: kb(fetched), target: "all of it, Monaco's parts included" },
];

if (json) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  const pad = (s, n) => String(s).padStart(n);
  console.log(
    `${"operation".padEnd(36)} ${pad("median", 10)} ${pad("p95", 10)} ${pad("floor", 10)} ${pad("ratio", 8)}  target`,
  );
  for (const r of rows) {
    const unit = r.operation.endsWith("(KB)") ? "" : " ms";
    const floor = r.floor_ms === undefined ? "-" : r.floor_ms.toFixed(2) + unit;
    const ratio = r.floor_ms === undefined ? "-" : (r.median_ms / r.floor_ms).toFixed(2) + "x";
    console.log(
      `${r.operation.padEnd(36)} ${pad(r.median_ms.toFixed(2) + unit, 10)} ${pad(r.p95_ms.toFixed(2) + unit, 10)} ${pad(floor, 10)} ${pad(ratio, 8)}  ${r.target}`,
    );
  }
}
