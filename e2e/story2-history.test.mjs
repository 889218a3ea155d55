// Story 2: checkpoint a working site, break it from the terminal, move the
// history slider back, see which files changed and how, restore: the file
// and the page are back. Then undo the restore.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, person, shot, signUp, createSprite, run, waitForScreen, waitForPreview, acceptDialogs } from "./lib.mjs";

test("checkpoint, break, compare on the slider, restore, undo", async () => {
  const browser = await launch();
  try {
    const bea = await person(browser, "bea");
    const { page } = bea;
    acceptDialogs(page);
    await signUp(page, "bea");
    await createSprite(page, "shop");

    // A site served by a service, so it comes back after a restore.
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    await run(
      page,
      "mkdir -p /srv/site && echo '<h1>Shop is open</h1>' > /srv/site/index.html && " +
        "sprite-env services create web --http-port 8080 --dir /srv/site -- python3 -m http.server 8080",
    );
    await waitForScreen(page, /"type":"complete"/);
    await page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(page, /Shop is open/);

    // A checkpoint of the working state.
    await page.getByRole("tab", { name: "History" }).click();
    await page.getByPlaceholder("What is this state? (optional)").fill("the shop works");
    await page.getByRole("button", { name: "Checkpoint now" }).click();
    await page.getByRole("slider", { name: "Checkpoint" }).waitFor();

    // Broken from the terminal: the page deleted, a stray file added.
    await run(page, "rm /srv/site/index.html && echo oops > /srv/site/notes.txt && echo broken-now");
    await waitForScreen(page, /^broken-now/m);

    // Back on the slider: the checkpoint, and what differs from now.
    const slider = page.getByRole("slider", { name: "Checkpoint" });
    await slider.fill("0");
    await page.getByText("the shop works").first().waitFor();
    const deleted = page.locator('li.change.deleted[data-path="/srv/site/index.html"]');
    await deleted.waitFor();
    await page.locator('li.change.added[data-path="/srv/site/notes.txt"]').waitFor();
    await deleted.getByRole("button").click();
    await page.locator(".diff .monaco-diff-editor").waitFor();
    await page.locator(".diff").getByText("Shop is open").first().waitFor();
    await shot(page, "history-diff-of-a-deleted-file");

    // Restore: the file and the page are back.
    await page.getByRole("button", { name: "Restore this checkpoint…" }).click();
    const undo = page.getByRole("button", { name: "Undo the restore" });
    await undo.waitFor({ timeout: 60_000 });
    await page.getByRole("tab", { name: "Preview" }).click();
    await page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(page, /Shop is open/, 60_000);
    await page.locator('.tree-root input').fill("/srv/site");
    await page.locator('.tree-root input').press("Enter");
    await page.locator('li.node[data-path="/srv/site/index.html"]').waitFor();
    await shot(page, "restored-page-is-back");

    // Undo the restore: the broken state again.
    await page.getByRole("tab", { name: "History" }).click();
    await undo.click();
    await undo.waitFor({ state: "detached", timeout: 60_000 });
    await page.locator('li.node[data-path="/srv/site/notes.txt"]').waitFor();
    assert.equal(await page.locator('li.node[data-path="/srv/site/index.html"]').count(), 0);
    await shot(page, "restore-undone");
    await bea.done();
  } finally {
    await browser.close();
  }
});
