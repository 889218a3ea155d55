// Story 2: checkpoint a working site (the new checkpoint shows at once,
// selected), break it from the terminal, open two of its files in the
// editor (one with unsaved changes), move the history slider back, see
// which files changed and how, restore: the page in the preview and the
// open tab come back by themselves, and the unsaved tab asks, naming the
// checkpoint. Then undo the restore: the broken state shows again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, person, shot, signUp, createSprite, run, waitForScreen, waitForPreview, acceptDialogs, accessible } from "./lib.mjs";

// The editor shows `text` in its visible model.
async function editorShows(page, text) {
  await page.locator(".monaco .view-lines", { hasText: text }).waitFor({ timeout: 30_000 });
}

async function openFile(page, path) {
  await page.locator(`li.node[data-path="${path}"]`).click();
  await page.locator(".tab.active", { hasText: path.split("/").pop() }).waitFor();
}

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
      "mkdir -p /srv/site && cd /srv/site && echo '<h1>Shop is open</h1>' > index.html && " +
        "echo '<p>About us</p>' > about.html && echo '<p>Old news</p>' > old.html && " +
        "sprite-env services create web --http-port 8080 --dir /srv/site -- python3 -m http.server 8080",
    );
    await waitForScreen(page, /"type":"complete"/);
    await page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(page, /Shop is open/);

    // A checkpoint of the working state: it shows at once, selected.
    await page.getByRole("tab", { name: "History" }).click();
    await page.getByPlaceholder("What is this state? (optional)").fill("the shop works");
    await page.getByRole("button", { name: "Checkpoint now" }).click();
    const slider = page.getByRole("slider", { name: "Checkpoint" });
    await slider.waitFor();
    const chosen = page.locator(".at-checkpoint strong", { hasText: "the shop works" });
    await chosen.waitFor();
    const checkpoint = (await chosen.innerText()).split(" ")[0];
    assert.match(checkpoint, /^v\d+$/);
    assert.equal(await slider.inputValue(), "0", "the new checkpoint is the one selected");
    await page.getByText("No file differs from now.").waitFor();
    await shot(page, "new-checkpoint-selected");

    // Broken from the terminal: the page changed, a page deleted, a stray file.
    await run(
      page,
      "cd /srv/site && echo '<h1>Closed for good</h1>' > index.html && echo '<p>About nobody</p>' > about.html && " +
        "rm old.html && echo oops > notes.txt && echo broken-now",
    );
    await waitForScreen(page, /^broken-now/m);
    // Two of the broken site's files open in the editor; the second gets
    // an unsaved change.
    await page.locator(".tree-root input").fill("/srv/site");
    await page.locator(".tree-root input").press("Enter");
    await openFile(page, "/srv/site/index.html");
    await editorShows(page, "Closed for good");
    await openFile(page, "/srv/site/about.html");
    await editorShows(page, "About nobody");
    await page.locator(".monaco .view-lines").click();
    await page.keyboard.press("End");
    await page.keyboard.type("<p>typed, not saved</p>");
    await page.locator(".tab.dirty").waitFor();

    await page.getByRole("tab", { name: "Preview" }).click();
    await page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(page, /Closed for good/);

    // Back on the slider: the checkpoint, and what differs from now.
    await page.getByRole("tab", { name: "History" }).click();
    await slider.fill("0");
    await page.getByText("the shop works").first().waitFor();
    const deleted = page.locator('li.change.deleted[data-path="/srv/site/old.html"]');
    await deleted.waitFor();
    await page.locator('li.change.added[data-path="/srv/site/notes.txt"]').waitFor();
    await page.locator('li.change.modified[data-path="/srv/site/index.html"]').waitFor();
    await deleted.getByRole("button").click();
    await page.locator(".diff .monaco-diff-editor").waitFor();
    await page.locator(".diff").getByText("Old news").first().waitFor();
    await shot(page, "history-diff-of-a-deleted-file");
    await accessible(page, "the history with a diff");

    // Restore: the preview shows the page again by itself, the open tab
    // shows the restored file, the unsaved tab asks, naming the checkpoint.
    await page.getByRole("button", { name: "Restore this checkpoint…" }).click();
    const undo = page.getByRole("button", { name: "Undo the restore" });
    await undo.waitFor({ timeout: 60_000 });
    await page.getByRole("tab", { name: "Preview" }).click();
    await waitForPreview(page, /Shop is open/, 60_000);
    const ask = page.getByRole("alert").filter({ hasText: `back to checkpoint ${checkpoint}` });
    await ask.waitFor();
    assert.match(await ask.innerText(), /\/srv\/site\/about\.html/);
    assert.equal(await page.getByRole("button", { name: "Keep mine and save" }).count(), 0);
    await shot(page, "restored-unsaved-tab-asks");
    await accessible(page, "the editor asking after a restore");
    await ask.getByRole("button", { name: `Load it as in ${checkpoint}` }).click();
    await editorShows(page, "About us");
    await page.locator(".tab.dirty").waitFor({ state: "detached" });
    await page.getByRole("button", { name: "index.html", exact: true }).click();
    await editorShows(page, "Shop is open");
    await page.locator('li.node[data-path="/srv/site/old.html"]').waitFor();
    assert.equal(await page.locator('li.node[data-path="/srv/site/notes.txt"]').count(), 0);
    await shot(page, "restored-page-is-back");

    // Undo the restore: the broken state again, in the tree, the editor
    // and the preview, with nothing pressed but the undo.
    await page.getByRole("tab", { name: "History" }).click();
    await undo.click();
    await undo.waitFor({ state: "detached", timeout: 60_000 });
    await page.locator('li.node[data-path="/srv/site/notes.txt"]').waitFor();
    assert.equal(await page.locator('li.node[data-path="/srv/site/old.html"]').count(), 0);
    await editorShows(page, "Closed for good");
    await page.getByRole("tab", { name: "Preview" }).click();
    await waitForPreview(page, /Closed for good/, 60_000);
    await shot(page, "restore-undone");
    await bea.done();
  } finally {
    await browser.close();
  }
});
