// Story 4: another person can neither see nor open someone's sprite: not
// on the dashboard, not in a workspace, not through the API, not at its URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, person, shot, signUp, createSprite, run, waitForScreen, waitForPreview, spriteUrlPattern } from "./lib.mjs";

test("a second person cannot see or open the first person's sprite or its URL", async () => {
  const browser = await launch();
  try {
    const dee = await person(browser, "dee");
    await signUp(dee.page, "dee");
    await createSprite(dee.page, "diary");
    await waitForScreen(dee.page, /root@[\w-]+:\S*[#$]/);
    await run(dee.page, "mkdir -p /srv/d && echo '<p>dear diary</p>' > /srv/d/index.html && cd /srv/d && python3 -m http.server 8080");
    await waitForScreen(dee.page, /Serving HTTP/);
    await dee.page.getByRole("button", { name: "Reload", exact: true }).click();
    await waitForPreview(dee.page, /dear diary/);
    const spriteUrl = await dee.page.locator(".preview a", { hasText: "Open in a new tab" }).getAttribute("href");
    assert.match(spriteUrl, spriteUrlPattern("diary-dee-[a-z0-9]+"));

    const eve = await person(browser, "eve");
    const { page } = eve;
    await signUp(page, "eve");
    await page.getByText("No sprites yet").waitFor();

    // The workspace address of Dee's sprite: nothing there for Eve.
    await page.goto(`${BASE}/s/diary`);
    await page.getByRole("heading", { name: "No such sprite" }).waitFor();
    await shot(page, "other-persons-workspace-is-not-found");

    // The API, with Eve's session: not found, and no file of it.
    const api = await page.evaluate(async () => {
      const one = await fetch("/v1/sprites/diary");
      const file = await fetch("/v1/sprites/diary/fs/read?path=/srv/d/index.html");
      const list = await (await fetch("/v1/sprites")).json();
      return { one: one.status, file: file.status, names: list.sprites.map((s) => s.name) };
    });
    assert.deepEqual(api, { one: 404, file: 404, names: [] });

    // Dee's URL: the hand-off finds no such sprite for Eve; the page never shows.
    await page.goto(spriteUrl);
    const body = await page.locator("body").innerText();
    assert.doesNotMatch(body, /dear diary/);
    assert.match(body, /not found|No such sprite/i);
    await shot(page, "other-persons-url-is-refused");
    eve.allow(/status of 404/);
    await eve.done();
    await dee.done();
  } finally {
    await browser.close();
  }
});
