// Story 9 (cold storage): a sprite left asleep leaves the server's disk for
// the object store, and the person who opens it again finds everything
// there. On the server the suite runs, sprites asleep cold for ten seconds
// are moved out (SPRITES_EVICT_AFTER). The card says the backup is current,
// then, while the person looks at it and without a reload, that the sprite
// is kept in object storage; opening it shows the file tree, the file in
// the editor and a working terminal, and the card says it is back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, person, shot, signUp, createSprite, run, waitForScreen, accessible } from "./lib.mjs";

// Waits, on the dashboard as it stands (the backup moves on its own and
// the card follows it live, never reloaded), until the card of `sprite`
// says `text`.
async function cardSays(page, sprite, text, timeout) {
  const deadline = Date.now() + timeout;
  const backup = page.locator(`li.card[data-sprite="${sprite}"] dd.backup`);
  for (;;) {
    await backup.waitFor();
    if (text.test(await backup.innerText())) return;
    if (Date.now() > deadline) throw new Error(`the card never said ${text}: ${await backup.innerText()}`);
    await page.waitForTimeout(500);
  }
}

test("a sprite kept in cold storage comes back whole when its owner opens it", async () => {
  const browser = await launch();
  try {
    const lin = await person(browser, "lin");
    const { page } = lin;
    await signUp(page, "lin");
    await createSprite(page, "archive");

    // Something worth keeping, written in the terminal.
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    await run(page, "echo 'kept in the cold' > /root/keep.txt && echo written");
    await waitForScreen(page, /^written$/m);
    await page.locator('li.node[data-path="/root/keep.txt"]').waitFor({ timeout: 10_000 });

    // Back on the dashboard, the card says how its backup stands.
    await page.getByRole("link", { name: "← All sprites" }).click();
    const card = page.locator('li.card[data-sprite="archive"]');
    await cardSays(page, "archive", /Backed up|Backing up/, 120_000);

    // Asleep cold (the API, as the sleeper does after its time): after
    // ten seconds it leaves this server's disk, and the card says so.
    const csrf = (await page.evaluate(async () => (await fetch("/v1/auth/session")).json())).profile.csrf_token;
    const slept = await page.evaluate(
      async (csrf) =>
        (
          await fetch("/v1/sprites/archive/sleep", {
            method: "POST",
            headers: { "x-csrf-token": csrf, "content-type": "application/json" },
            body: JSON.stringify({ cold: true }),
          })
        ).status,
      csrf,
    );
    assert.equal(slept, 200);
    await cardSays(page, "archive", /Kept in object storage; comes back when opened/, 120_000);
    await shot(page, "card-kept-in-object-storage");
    await accessible(page, "the dashboard with a sprite in cold storage");

    // Opened again: the tree, the file in the editor, a terminal.
    await card.getByRole("link", { name: "Open" }).click();
    await page.locator(".workspace").waitFor();
    const file = page.locator('li.node[data-path="/root/keep.txt"]');
    await file.waitFor({ timeout: 120_000 });
    await file.click();
    await page.locator(".monaco .view-lines", { hasText: "kept in the cold" }).waitFor({ timeout: 60_000 });
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/, 120_000);
    await run(page, "cat /root/keep.txt");
    await waitForScreen(page, /^kept in the cold$/m);
    await shot(page, "back-from-cold-storage");

    // And the dashboard says it is on the server again.
    await page.getByRole("link", { name: "← All sprites" }).click();
    await cardSays(page, "archive", /Backed up|Backing up/, 60_000);
    await lin.done();
  } finally {
    await browser.close();
  }
});
