// Story 1: a newcomer signs up, creates a sprite, writes index.html in the
// editor, starts a web server from the terminal and sees the page in the
// preview; an edit and a save show in the preview too; files made and
// changed from a terminal show in the tree and the editor as they happen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, person, shot, signUp, createSprite, run, waitForScreen, waitForPreview, accessible } from "./lib.mjs";

test("sign up, write a page, serve it, see it and its edit in the preview", async () => {
  const browser = await launch();
  try {
    const ada = await person(browser, "ada");
    const { page } = ada;
    const handle = await signUp(page, "ada");
    await shot(page, "dashboard-empty");
    await accessible(page, "the dashboard");
    await createSprite(page, "site");
    await shot(page, "workspace-opened");

    // A new file in the home folder, written in the editor.
    await page.getByRole("button", { name: "+ File" }).click();
    await page.getByPlaceholder("New file name").fill("index.html");
    await page.getByRole("button", { name: "OK" }).click();
    const editor = page.locator(".monaco .view-lines");
    await editor.waitFor({ timeout: 60_000 });
    await editor.click();
    await page.keyboard.type("<h1>Hello from my sprite</h1>");
    await page.locator(".tab.dirty").waitFor();
    await page.keyboard.press("Control+S");
    await page.locator(".tab.dirty").waitFor({ state: "detached" });

    // A web server from the terminal.
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    await run(page, "cd /root && python3 -m http.server 8080");
    await waitForScreen(page, /Serving HTTP on/);
    await page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(page, /Hello from my sprite/);
    await shot(page, "preview-shows-the-page");
    await accessible(page, "the workspace");

    // An edit, saved: the preview reloads by itself.
    await editor.click();
    await page.keyboard.press("End");
    await page.keyboard.type("<p>Edited and saved</p>");
    await page.keyboard.press("Control+S");
    await shot(page, "edit-saved");
    await waitForPreview(page, /Edited and saved/);
    await shot(page, "preview-shows-the-edit");

    // From a second terminal: a new file shows in the tree by itself, and
    // the open tab says its file changed on the sprite, with nothing pressed.
    await page.getByRole("button", { name: "+ Terminal" }).click();
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);
    await run(page, "cd /root && echo '<p>From the terminal</p>' >> index.html && touch notes-from-the-terminal.txt");
    await page.locator('li.node[data-path="/root/notes-from-the-terminal.txt"]').waitFor({ timeout: 10_000 });
    const changed = page.getByText("/root/index.html changed on the sprite since you opened it.");
    await changed.waitFor({ timeout: 10_000 });
    await shot(page, "terminal-changes-shown-live");
    await page.getByRole("button", { name: "Load the new version" }).click();
    await page.locator(".monaco .view-lines", { hasText: "From the terminal" }).waitFor();
    await changed.waitFor({ state: "detached" });

    // On a tablet's width the panes stack and stay usable.
    await page.setViewportSize({ width: 820, height: 1180 });
    await page.locator(".term:not(.hidden) .xterm").waitFor();
    await shot(page, "workspace-at-tablet-width");

    // The sprite's own URL, in a browser not signed in: sign in on the
    // app, then on to the page (the private URL hand-off).
    const spriteUrl = await page.locator(".preview a", { hasText: "Open in a new tab" }).getAttribute("href");
    const later = await person(browser, "ada-elsewhere");
    await later.page.goto(spriteUrl);
    await later.page.getByRole("heading", { name: "Sign in to Sprites" }).waitFor();
    await later.page.getByLabel("Email or user name").fill(handle);
    await later.page.getByLabel("Password").fill("a long password");
    await later.page.getByRole("button", { name: "Sign in" }).click();
    await later.page.getByText("Edited and saved").waitFor();
    assert.equal(new URL(later.page.url()).host, new URL(spriteUrl).host);
    await shot(later.page, "private-url-after-signing-in");

    await later.done();
    await ada.done();
  } finally {
    await browser.close();
  }
});
