// Chromium in a network namespace of its own, seeing the server on its own
// loopback at the same port.
//
// The browser runs on the sprites' machine, whose interfaces change as
// sprites come and go (a veth pair each); Chromium watches the machine's
// addresses and fails a request in flight with ERR_NETWORK_CHANGED when
// they change. In a namespace of its own it sees only its loopback, which
// never changes. Its loopback reaches the server's through a Unix socket
// (the filesystem is shared across network namespaces):
//
//   Chromium -> 127.0.0.1:PORT in the namespace -> this file run as a
//   bridge there -> UNIX socket -> the story's process -> 127.0.0.1:PORT
//
// Needs root (ip netns). The namespace, its bridge and the socket go when
// the story's process ends.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// Joins two sockets (made with allowHalfOpen): each side's end is passed
// on as the other's, so a response or a WebSocket's close written just
// before a FIN arrives whole; an error ends both at once.
const halfOpen = { allowHalfOpen: true };
function join2(a, b) {
  a.pipe(b);
  b.pipe(a);
  const fail = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", fail);
  b.on("error", fail);
}

// Makes the namespace and its bridge to 127.0.0.1:`port`; gives the path of
// an executable that runs `chromium` inside it, and `close`.
let made = 0;
export async function isolate(chromium, port) {
  const name = `sprites-e2e-${process.pid}-${++made}`;
  const dir = mkdtempSync(join(tmpdir(), "sprites-e2e-"));
  const socket = join(dir, "server.sock");
  let bridge;
  let outside;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    process.off("exit", close);
    bridge?.kill();
    outside?.close();
    try {
      execFileSync("ip", ["netns", "delete", name], { stdio: "ignore" });
    } catch {
      // Never made, or already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", close);
  try {
    execFileSync("ip", ["netns", "add", name]);
    execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    outside = net.createServer(halfOpen, (c) => join2(c, net.connect({ port, host: "127.0.0.1", ...halfOpen })));
    await new Promise((ok, fail) => outside.once("error", fail).listen(socket, ok));
    bridge = spawn("ip", ["netns", "exec", name, process.execPath, fileURLToPath(import.meta.url), String(port), socket], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("the namespace's bridge did not start in 10 s")), 10_000);
      bridge.once("error", fail);
      bridge.once("exit", (code) => fail(new Error(`the namespace's bridge ended (${code})`)));
      bridge.stdout.once("data", () => {
        clearTimeout(timer);
        ok();
      });
    });
    // Neither keeps the story's process alive once its browser is gone.
    outside.unref();
    bridge.unref();
    bridge.stdout.unref?.();
    const executable = join(dir, "chromium");
    writeFileSync(executable, `#!/bin/sh\nexec ip netns exec ${name} '${chromium}' "$@"\n`);
    chmodSync(executable, 0o755);
    return { executable, close };
  } catch (e) {
    close();
    throw e;
  }
}

// Run inside the namespace: listens on its loopback (both families; Chromium
// tries ::1 first for localhost) and carries each connection to `socket`.
async function bridge(port, socket) {
  const listen = (host) =>
    new Promise((ok, fail) => {
      const s = net.createServer(halfOpen, (c) => join2(c, net.connect({ path: socket, ...halfOpen })));
      s.once("error", fail).listen(port, host, ok);
    });
  await listen("127.0.0.1");
  await listen("::1").catch(() => {});
  process.stdout.write("ready\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bridge(Number(process.argv[2]), process.argv[3]);
}
