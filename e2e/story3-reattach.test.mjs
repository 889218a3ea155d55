// Story 3: a long command runs in the terminal; the page is closed; on
// coming back, the session is still running and, re-attached, its output
// goes on from where it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, person, shot, signUp, createSprite, run, waitForScreen } from "./lib.mjs";

const lastTick = (text) => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

test("close the page during a long command, reopen, re-attach, see it continue", async () => {
  const browser = await launch();
  try {
    const cy = await person(browser, "cy");
    let page = cy.page;
    await signUp(page, "cy");
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
    await page.waitForTimeout(1500);
    await page.goto(workspace);
    await page.locator(".workspace").waitFor();
    await page.getByRole("button", { name: "Sessions" }).click();
    // The new page opened a shell of its own; the list offers the other one.
    const running = page.locator(".sessions .session");
    await running.first().waitFor();
    assert.equal(await running.count(), 1, "one session runs besides this page's own");
    await running.getByRole("button", { name: "Attach" }).click();
    // The screen so far is replayed (it may arrive in several pieces), and
    // new ticks keep coming.
    const replayed = lastTick(await waitForScreen(page, (text) => lastTick(text) > before));
    assert.ok(replayed > before, `the command went on while away (${before} then ${replayed})`);
    await page.waitForTimeout(1500);
    const later = lastTick(await waitForScreen(page, /tick \d+/));
    assert.ok(later > replayed, `its output continues (${replayed} then ${later})`);
    await shot(page, "reattached-session-continues");

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
    assert.ok(BASE);
    await cy.done();
  } finally {
    await browser.close();
  }
});
