// Story 3: a long command runs in the terminal; the page is closed; on
// coming back, the workspace attaches that session again by itself (no
// new shell piles up), and its output goes on from where it was. The
// session list names each session (command, start, who is attached),
// closes with Escape or a click outside, leaves the terminal in sight,
// and ends a session. A dropped connection reconnects by itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, person, shot, signUp, createSprite, run, waitForScreen, acceptDialogs, accessible } from "./lib.mjs";

const lastTick = (text) => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

async function openSessions(page) {
  await page.getByRole("button", { name: "Sessions" }).click();
  const popover = page.getByRole("dialog", { name: "Running sessions" });
  // The list, or its "none" line; not the "Loading…" before them.
  await popover.locator(".session, p.muted").first().waitFor();
  return popover;
}

test("close the page during a long command, reopen: it is attached again and goes on", async () => {
  const browser = await launch();
  try {
    const cy = await person(browser, "cy");
    let page = cy.page;
    const handle = await signUp(page, "cy");
    await createSprite(page, "long");
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    await run(page, "for i in $(seq 1 600); do echo tick $i; sleep 0.3; done");
    const before = lastTick(await waitForScreen(page, /tick 5\b/));
    const workspace = page.url();
    await page.close();

    // Later, in a new page of the same browser (whose sockets the story
    // can reach, to drop them below).
    await cy.context.addInitScript(() => {
      window.__sockets = [];
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(...a) {
          super(...a);
          window.__sockets.push(this);
        }
      };
    });
    page = await cy.newPage();
    acceptDialogs(page);
    await page.waitForTimeout(1500);
    await page.goto(workspace);
    await page.locator(".workspace").waitFor();
    // The tab is the session it had, attached again by itself: the screen
    // so far is replayed (it may arrive in pieces), and new ticks come.
    const replayed = lastTick(await waitForScreen(page, (text) => lastTick(text) > before));
    assert.ok(replayed > before, `the command went on while away (${before} then ${replayed})`);
    await page.waitForTimeout(1500);
    const later = lastTick(await waitForScreen(page, /tick \d+/));
    assert.ok(later > replayed, `its output continues (${replayed} then ${later})`);
    await shot(page, "reattached-session-continues");

    // One session, no new shell beside it, named by what runs and who is there.
    let popover = await openSessions(page);
    const rows = popover.locator(".session");
    assert.equal(await rows.count(), 1, "reopening started no other shell");
    const row = await rows.first().innerText();
    assert.match(row, /bash -l/);
    assert.match(row, /started \d/);
    assert.match(row, new RegExp(`attached: ${handle}`));
    assert.match(row, /in a tab here/);
    // It opens over the editor, not over the terminal it is about.
    const pop = await popover.boundingBox();
    const term = await page.locator(".term:not(.hidden)").boundingBox();
    assert.ok(pop.y + pop.height <= term.y, "the list leaves the terminal in sight");
    await shot(page, "session-list");
    await accessible(page, "the session list");
    await page.keyboard.press("Escape");
    await popover.waitFor({ state: "detached" });
    popover = await openSessions(page);
    await page.locator(".tree-pane").click({ position: { x: 20, y: 200 } });
    await popover.waitFor({ state: "detached" });

    // The network drops: every terminal connection of the page closes. The
    // tab reconnects by itself, the screen is replayed, the ticks go on.
    await page.evaluate(() => {
      for (const s of window.__sockets) if (s.url.includes("/exec")) s.close();
    });
    await page.waitForTimeout(300);
    const resumed = lastTick(await waitForScreen(page, (text) => lastTick(text) >= later));
    await page.waitForTimeout(1500);
    const after = lastTick(await waitForScreen(page, /tick \d+/));
    assert.ok(after > resumed && resumed >= later, `output goes on after reconnecting (${later}, ${resumed}, ${after})`);
    assert.ok(
      await page.evaluate(() => window.__sockets.filter((s) => s.url.includes("/exec/") && s.readyState === 1).length) >= 1,
      "the tab attached again",
    );
    await shot(page, "reconnected-after-a-drop");

    // A second terminal, then ended from the list: its tab says so, the
    // list keeps the first.
    await page.getByRole("button", { name: "+ Terminal" }).click();
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    popover = await openSessions(page);
    await popover.locator(".session").nth(1).waitFor();
    assert.equal(await popover.locator(".session").count(), 2);
    // Newest first: the one just started.
    const id = await popover.locator(".session").first().getAttribute("data-session-id");
    await popover.locator(`[data-end-session="${id}"]`).click();
    await popover.locator(`[data-session-id="${id}"]`).waitFor({ state: "detached", timeout: 15_000 });
    assert.equal(await popover.locator(".session").count(), 1);
    await page.locator(".term:not(.hidden) .xterm-rows", { hasText: "the session ended" }).waitFor();
    await page.keyboard.press("Escape");
    await shot(page, "a-session-ended");

    // Opened once more: still one session, attached again, nothing piled up.
    await page.reload();
    await waitForScreen(page, (text) => lastTick(text) > after);
    popover = await openSessions(page);
    assert.equal(await popover.locator(".session").count(), 1, "sessions do not pile up");
    assert.ok(BASE);
    await cy.done();
  } finally {
    await browser.close();
  }
});
