// Story 6 (templates): a newcomer who has never used a terminal finds
// their (still empty) list of sprites above the gallery, picks the
// personal-website template, finds its "start here" note open and the
// site already in the preview (a calm wait while the app starts, never
// "nothing listens" nor a 503), the address to share in full above it with
// a copy button and whether it is private, changes the page's title in the
// editor, saves, and sees it live.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, person, shot, signUp, waitForPreview, accessible, spriteUrlPattern } from "./lib.mjs";

// Answers from sprites' hosts that say their app was not ready: the
// preview waits for a starting app instead.
function watchUnready(page) {
  const app = new URL(BASE).host;
  const seen = [];
  page.on("response", (r) => {
    const host = new URL(r.url()).host;
    if (host !== app && r.status() === 503) seen.push(r.url());
  });
  page.on("framenavigated", async (f) => {
    if (f === page.mainFrame()) return;
    const text = await f.locator("body").innerText({ timeout: 2_000 }).catch(() => "");
    if (/nothing listens/.test(text)) seen.push(`${f.url()}: ${text}`);
  });
  return seen;
}

test("a template gives a live site whose title a newcomer changes in the editor", async () => {
  const browser = await launch();
  try {
    const noor = await person(browser, "noor");
    const { page } = noor;
    const handle = await signUp(page, "noor");
    const unready = watchUnready(page);

    // Their own sprites come first (none yet), the gallery below.
    const empty = page.getByText("No sprites yet");
    await empty.waitFor();
    const card = page.locator('li.template[data-template="website"]');
    await card.waitFor();
    assert.ok(
      (await empty.boundingBox()).y < (await page.locator("section.gallery").boundingBox()).y,
      "the person's sprites are listed above the template gallery",
    );

    // The gallery: one card a template. On a machine's first start the
    // images are still being built: the card says so until it is ready,
    // its step on a line of its own inside the card.
    for (const name of ["website", "docs", "flask", "node"]) {
      await page.locator(`li.template[data-template="${name}"] img`).waitFor();
    }
    for (const li of await page.locator("li.template").all()) {
      const box = await li.boundingBox();
      for (const inner of await li.locator("button, p").all()) {
        const b = await inner.boundingBox();
        if (!b) continue;
        assert.ok(
          b.x >= box.x - 1 && b.x + b.width <= box.x + box.width + 1 && b.y + b.height <= box.y + box.height + 1,
          `${await inner.innerText()} stays inside its card`,
        );
      }
    }
    await page.locator('li.template[data-template="website"][data-state="ready"]').waitFor({ timeout: 600_000 });
    await shot(page, "template-gallery");
    await accessible(page, "the template gallery");
    await card.getByRole("button", { name: "Use this template" }).click();

    // The workspace opens with the note in the editor and the site live.
    await page.waitForURL(/\/s\/website/);
    await page.locator(".tab", { hasText: "START-HERE.md" }).waitFor({ timeout: 60_000 });
    await page.locator(".monaco .view-lines", { hasText: "Change the title first" }).waitFor();
    await waitForPreview(page, /Hello, I am Alex/);
    await shot(page, "note-open-and-site-live");
    await accessible(page, "a template's workspace");

    // The address to share, whole, with a copy button; private by default.
    const address = page.getByLabel("The sprite's address");
    assert.match(await address.inputValue(), spriteUrlPattern(`website-${handle}`));
    await page.locator(".preview .badge.access", { hasText: "Private" }).waitFor();
    await page.locator(".preview-bar").getByRole("button", { name: "Copy" }).click();
    await page.locator(".preview-bar").getByRole("button", { name: "Copied" }).waitFor();

    // As the note says: the site folder, index.html, the name in <h1>.
    await page.locator('li.node[data-path="/root/site"]').click();
    await page.locator('li.node[data-path="/root/site/index.html"]').click();
    await page.locator(".tab.active", { hasText: "index.html" }).waitFor();
    const editor = page.locator(".monaco .view-lines");
    await editor.getByText("Hello, I am Alex").waitFor();
    await editor.click();
    await page.keyboard.press("Control+F");
    await page.keyboard.type("Alex</h1>");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Escape");
    await page.keyboard.type("Noor</h1>");
    await page.locator(".tab.dirty").waitFor();
    await page.keyboard.press("Control+S");
    await page.locator(".tab.dirty").waitFor({ state: "detached" });
    await waitForPreview(page, /Hello, I am Noor/);
    await shot(page, "title-changed-and-live");

    // The sprite is an ordinary one of the dashboard, made from the template.
    await page.goto(new URL("/", page.url()).href);
    await page.locator('li.card[data-sprite="website"]').waitFor();
    // The gallery, loaded beside the sprites, still offers the template.
    await page.locator('li.template[data-template="website"]').waitFor();
    assert.deepEqual(unready, [], "the preview waited for the app instead of showing it not ready");
    await noor.done();
  } finally {
    await browser.close();
  }
});

test("every template of the gallery gives a sprite already serving its app", async () => {
  const browser = await launch();
  try {
    const sam = await person(browser, "sam");
    const { page } = sam;
    await signUp(page, "sam");
    const unready = watchUnready(page);
    const expected = { docs: /Welcome/, flask: /My Flask app/, node: /My Node app/ };
    for (const [name, shows] of Object.entries(expected)) {
      const ready = page.locator(`li.template[data-template="${name}"][data-state="ready"]`);
      await ready.waitFor({ timeout: 600_000 });
      await ready.getByRole("button", { name: "Use this template" }).click();
      await page.waitForURL(new RegExp(`/s/${name}`));
      await page.locator(".tab.active", { hasText: "START-HERE.md" }).waitFor({ timeout: 60_000 });
      await waitForPreview(page, shows, 60_000);
      await shot(page, `${name}-template-serving`);
      await page.getByRole("link", { name: "← All sprites" }).click();
    }
    assert.deepEqual(unready, [], "the preview waited for each app instead of showing it not ready");
    await sam.done();
  } finally {
    await browser.close();
  }
});
