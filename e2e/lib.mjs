// What the stories share: Debian's Chromium through playwright-core, a
// fresh account per story, screenshots kept in e2e/artifacts/, and the
// browser console watched for errors.
import { chromium } from "playwright-core";
import { isolate } from "./netns.mjs";
import { mkdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

export const BASE = process.env.SPRITES_URL ?? "http://localhost:8080";
const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(here, "artifacts");
mkdirSync(ARTIFACTS, { recursive: true });

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

// E2E_BROWSER_HOME: a home whose NSS database holds the roots Chromium
// trusts (the stories over HTTPS trust the test CA's there).
// E2E_NETNS=1: Chromium in a network namespace of its own (netns.mjs), out
// of reach of the machine's changing interfaces; the suite runs it so.
export async function launch() {
  const home = process.env.E2E_BROWSER_HOME;
  const base = new URL(BASE);
  const port = Number(base.port || (base.protocol === "https:" ? 443 : 80));
  const isolated = process.env.E2E_NETNS === "1" ? await isolate(CHROMIUM, port) : null;
  const launching = chromium.launch({
    executablePath: isolated?.executable ?? CHROMIUM,
    headless: true,
    env: home ? { ...process.env, HOME: home } : process.env,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  let browser;
  try {
    browser = await launching;
  } catch (e) {
    isolated?.close();
    throw e;
  }
  if (isolated) browser.on("disconnected", isolated.close);
  return browser;
}

// A new browser profile (its own cookies) with the console watched: any
// error there fails the story at `done()`.
export async function person(browser, label) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  // What the sprite's own pages log in the preview frame is theirs (a 503
  // while nothing listens yet, say); the app's pages must log no error.
  const app = new URL(BASE).host;
  const watch = (page) => {
    page.on("console", (m) => {
      const where = m.location()?.url ?? "";
      const fromSprite = where !== "" && new URL(where, BASE).host !== app;
      if (m.type() === "error" && !fromSprite) errors.push(`${label}: ${m.text()} (${where})`);
    });
    page.on("pageerror", (e) => {
      const where = /https?:\/\/[^/\s)]+/.exec(e.stack ?? "")?.[0];
      if (where && new URL(where).host !== app) return;
      errors.push(`${label}: ${e.message}`);
    });
    // A browser on the sprites' machine itself (run without E2E_NETNS)
    // sees its interfaces change as sprites come and go; Chromium may then
    // fail a navigation in flight with ERR_NETWORK_CHANGED, and its error
    // page may still be loading when the address is opened again. The
    // story waits for that page and opens the address again, as a person
    // would, three times at most.
    const goto = page.goto.bind(page);
    const networkChanged = /ERR_NETWORK_CHANGED|interrupted by another navigation to "chrome-error:/;
    page.goto = async (url, options) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await goto(url, options);
        } catch (e) {
          if (!networkChanged.test(String(e)) || attempt >= 3) throw e;
          await page.waitForLoadState("load").catch(() => {});
          await page.waitForTimeout(500);
        }
      }
    };
    return page;
  };
  const page = watch(await context.newPage());
  return {
    context,
    page,
    errors,
    // Another page of the same browser (same cookies), watched likewise.
    async newPage() {
      return watch(await context.newPage());
    },
    // Errors the story expects (a refused request it makes on purpose).
    allow(pattern) {
      for (let i = errors.length - 1; i >= 0; i--) if (pattern.test(errors[i])) errors.splice(i, 1);
    },
    async done() {
      await context.close();
      assert.deepEqual(errors, [], "the browser console stays free of errors");
    },
  };
}

// Says yes to every confirm() of the page. Chromium can close a dialog by
// itself before the answer arrives ("No dialog is showing"); that is no
// failure of the story, whose next step checks what the yes should have done.
export function acceptDialogs(page) {
  page.on("dialog", (d) =>
    d.accept().catch((e) => {
      if (!/No dialog is showing/.test(String(e))) throw e;
    }),
  );
}

// Named after the story (each test file runs in a process of its own).
const story = basename(process.argv[1] ?? "story", ".test.mjs");
let shots = 0;
export async function shot(page, name) {
  shots += 1;
  const file = join(ARTIFACTS, `${story}-${String(shots).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

const suffix = () => Math.random().toString(36).slice(2, 8);

// The address of the sprite whose URL label is `label` (a pattern's
// source), as a pattern: the app's scheme and port, its host under the
// app's.
export function spriteUrlPattern(label) {
  const base = new URL(BASE);
  const host = base.hostname.replaceAll(".", "\\.");
  const port = base.port ? `:${base.port}` : "";
  return new RegExp(`^${base.protocol}//${label}\\.${host}${port}/$`);
}

// The address of the sprite whose URL label is `label`.
export function spriteUrl(label) {
  const base = new URL(BASE);
  const port = base.port ? `:${base.port}` : "";
  return `${base.protocol}//${label}.${base.hostname}${port}/`;
}

// The server's admin, for stories that need one: an API token for the
// invitations every story's people sign up with (the server's sign-up is
// by invitation), and a login for the admin's own pages.
export const ADMIN = {
  token: process.env.SPRITES_ADMIN_TOKEN,
  login: process.env.SPRITES_ADMIN_LOGIN,
  password: process.env.SPRITES_ADMIN_PASSWORD,
};

// An invitation made through the API by the admin: its sign-up link.
export async function invitation(email) {
  const res = await fetch(`${BASE}/v1/admin/invitations`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN.token}`, "content-type": "application/json" },
    body: JSON.stringify(email ? { email } : {}),
  });
  assert.equal(res.status, 201, `an invitation is made: ${await res.clone().text()}`);
  const { token } = await res.json();
  return `${BASE}/signup?invite=${token}`;
}

// Signs up a new person through the page; returns their handle. Without
// `from` (a page that leads to the sign-up form, such as a class's join
// link), they come with an invitation made for their address, when the
// story has an admin token (a server that lets anyone sign up needs none).
export async function signUp(page, prefix = "user", { from } = {}) {
  const handle = `${prefix}-${suffix()}`;
  const email = `${handle}@example.com`;
  if (from) {
    await page.goto(from);
  } else {
    await page.goto(ADMIN.token ? await invitation(email) : `${BASE}/signup`);
  }
  const field = page.getByLabel("Email");
  if (from || !ADMIN.token) {
    await field.fill(email);
  } else {
    // An invitation for an address fills it in, and it cannot be changed.
    await page.waitForFunction(
      (e) => document.querySelector("input[name=email]")?.value === e,
      email,
    );
    assert.equal(await field.getAttribute("readonly"), "", "the invited address is fixed");
  }
  await page.getByLabel("User name").fill(handle);
  await page.getByLabel("Password").fill("a long password");
  await page.getByRole("button", { name: "Create account" }).click();
  if (!from) await page.getByRole("heading", { name: "Your sprites" }).waitFor();
  // The page is signed in once the sign-up answer arrived; the browser
  // stores its cookie a moment later. A story that navigates away at once
  // (a join link) could leave before it is kept: wait for it.
  const deadline = Date.now() + 10_000;
  while (!(await page.context().cookies()).some((c) => c.name === "sprites_session")) {
    if (Date.now() > deadline) throw new Error("the session cookie was never stored");
    await page.waitForTimeout(25);
  }
  return handle;
}

// Creates a sprite from the dashboard and opens its workspace.
export async function createSprite(page, name) {
  await page.getByLabel("New sprite").fill(name);
  await page.getByRole("button", { name: "Create sprite" }).click();
  await page.locator(`li.card[data-sprite="${name}"]`).waitFor({ timeout: 60_000 });
  await page.locator(`li.card[data-sprite="${name}"]`).getByRole("link", { name: "Open" }).click();
  await page.locator(".workspace").waitFor();
}

// Types a command into the visible terminal and presses Enter.
export async function run(page, command) {
  const term = page.locator(".term:not(.hidden) .xterm");
  await term.click();
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
}

// The text the visible terminal shows.
export async function screenText(page) {
  return page.locator(".term:not(.hidden) .xterm-rows").innerText();
}

// `pattern` is a regular expression or a test of the screen's text.
export async function waitForScreen(page, pattern, timeout = 30_000) {
  const shows = typeof pattern === "function" ? pattern : (text) => pattern.test(text);
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = await screenText(page);
    if (shows(text)) return text;
    await page.waitForTimeout(200);
  }
  throw new Error(`the terminal never showed ${pattern}; it shows:\n${text}`);
}

// The preview frame's body text, once it matches. The browser runs on the
// sprites' own machine, whose network interfaces change as sprites come
// and go (a veth each); Chromium then fails a load in flight with its
// "network change" page (ERR_NETWORK_CHANGED), and the story presses the
// preview's Reload, as a person would. A first visit over HTTPS, which
// waits for the name's certificate, is the load most often caught so.
export async function waitForPreview(page, pattern, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    const frame = page.frameLocator(".preview iframe");
    text = await frame.locator("body").innerText({ timeout: 5_000 }).catch(() => "");
    if (pattern.test(text)) return text;
    if (/A network change was detected/.test(text)) {
      await page.getByRole("button", { name: "Reload", exact: true }).click();
    }
    await page.waitForTimeout(300);
  }
  throw new Error(`the preview never showed ${pattern}; it shows:\n${text}`);
}

// An accessibility scan of what the page shows now, with axe-core (npm):
// no serious or critical violation. The preview frame shows the sprite's
// own site, which is the person's work, not the app's: it is left out.
// Evaluated rather than added as a script tag, which the app's content
// security policy would refuse.
const AXE = readFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");
export async function accessible(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) {
    await page.evaluate(AXE);
  }
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(
      { exclude: [["iframe"]] },
      { iframes: false, resultTypes: ["violations"] },
    );
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
  });
  assert.deepEqual(found, [], `${what}: no serious or critical accessibility violation`);
}
