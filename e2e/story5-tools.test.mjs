// Story 5: the rest of the toolbox. The first command of a new sprite
// installs a package with apt. Files: a folder, an upload, a rename,
// a download, a delete. Settings: a public URL, sleep times and the sites
// it may reach (a name off the list refused in the terminal), and a
// restart that keeps the files. The
// dashboard: live state when the sprite sleeps, a copy made from a
// checkpoint, an API token made and revoked, a deletion confirmed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BASE, launch, person, shot, signUp, createSprite, run, waitForScreen, acceptDialogs, accessible } from "./lib.mjs";

test("files, settings, live state, a copy from a checkpoint, tokens, deletion", async () => {
  const browser = await launch();
  try {
    const fay = await person(browser, "fay");
    const { page } = fay;
    acceptDialogs(page);
    await signUp(page, "fay");
    await createSprite(page, "tools");
    await waitForScreen(page, /root@[\w-]+:\S*[#$]/);

    // The sprite's very first command has its network, and apt knows its
    // packages without an `apt-get update` first.
    await run(page, "apt-get install -y -q jq >/dev/null 2>&1 && jq --version && echo apt-ok");
    await waitForScreen(page, /^apt-ok$/m, 120_000);
    await shot(page, "first-apt-get-install-works");

    // Files: a folder, a file uploaded into it, renamed, downloaded, deleted.
    await page.getByRole("button", { name: "+ Folder" }).click();
    await page.getByPlaceholder("New folder name").fill("docs");
    await page.getByRole("button", { name: "OK" }).click();
    const folder = page.locator('li.node[data-path="/root/docs"]');
    await folder.click();
    await page.locator('input[type="file"]').setInputFiles({
      name: "notes.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("uploaded words\n"),
    });
    const uploaded = page.locator('li.node[data-path="/root/docs/notes.txt"]');
    await uploaded.waitFor();
    // Opened, it shows its words in the editor (renamed before they came,
    // the read would find no file).
    await uploaded.click();
    const editor = page.locator(".monaco .view-lines", { hasText: "uploaded words" });
    await editor.waitFor();
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByPlaceholder("New name").fill("renamed.txt");
    await page.getByRole("button", { name: "OK" }).click();
    const renamed = page.locator('li.node[data-path="/root/docs/renamed.txt"]');
    await renamed.waitFor();
    await renamed.click();
    await page.locator(".tab.active", { hasText: "renamed.txt" }).waitFor();
    await editor.waitFor();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "renamed.txt");
    assert.equal(await readFile(await download.path(), "utf8"), "uploaded words\n");
    await shot(page, "file-tree-after-upload-and-rename");
    await accessible(page, "the file tree");
    await page.getByRole("button", { name: "Delete" }).click();
    await renamed.waitFor({ state: "detached" });

    // Settings: public, and sleep times in minutes.
    await page.getByRole("tab", { name: "Settings" }).click();
    await page.getByLabel("Public: anyone with the link").check();
    await page.getByLabel("Freeze in memory after (minutes, 0 = never)").fill("2");
    await page.getByLabel("Stop its programs after (minutes, 0 = never)").fill("0");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Saved.").waitFor();
    const sprite = await page.evaluate(async () => (await fetch("/v1/sprites/tools")).json());
    assert.equal(sprite.url_settings.auth, "public");
    assert.deepEqual(sprite.sleep, { warm_after_secs: 120, cold_after_secs: 0 });
    await shot(page, "settings-saved");
    await accessible(page, "the settings");

    // Network: only the sites listed. In force at once: the terminal's
    // resolver refuses a name not on the list (response code 5).
    await page.getByLabel("Only the sites listed").check();
    await page.getByLabel("Sites, one a line (*.example.com: its subdomains)").fill("deb.debian.org\n*.pythonhosted.org");
    await page.getByRole("button", { name: "Save network" }).click();
    await page.getByText("Saved: in force now.").waitFor();
    await run(
      page,
      `python3 -c 'import socket,struct;q=struct.pack(">6H",1,256,1,0,0,0)+b"\\x07example\\x03com\\x00"+struct.pack(">2H",1,1);s=socket.socket(2,2);s.settimeout(9);s.sendto(q,("127.0.0.53",53));print("rcode", s.recv(512)[3]&15)'`,
    );
    await waitForScreen(page, /^rcode 5$/m);
    await shot(page, "terminal-a-name-off-the-list-is-refused");
    // Opened again, the settings show the policy as saved.
    await page.reload();
    await page.getByRole("tab", { name: "Settings" }).click();
    await page.waitForFunction(() => document.querySelector("textarea[name=sites]")?.value.includes("deb.debian.org"));
    assert.ok(await page.getByLabel("Only the sites listed").isChecked());
    assert.equal(
      await page.getByLabel("Sites, one a line (*.example.com: its subdomains)").inputValue(),
      "deb.debian.org\n*.pythonhosted.org",
    );
    await shot(page, "settings-network-only-the-sites-listed");
    await accessible(page, "the network settings");
    // Back to any site for the rest of the story.
    await page.getByLabel("Any site", { exact: true }).check();
    await page.getByRole("button", { name: "Save network" }).click();
    await page.getByText("Saved: in force now.").waitFor();
    const policy = await page.evaluate(async () => (await fetch("/v1/sprites/tools/policy/network")).json());
    assert.deepEqual(policy, { rules: [] });

    // Restart: every process starts again (the way back for a sprite whose
    // processes took all it may have); the files stay.
    // The sessions' ids; none while the restart is under way.
    const sessions = async () => {
      const listed = await page.evaluate(async () => {
        const res = await fetch("/v1/sprites/tools/exec");
        return { status: res.status, body: await res.json() };
      });
      return listed.status === 200 ? listed.body.sessions.map((x) => x.id) : null;
    };
    const before = await sessions();
    assert.ok(before.length > 0, "the terminal's session");
    await page.getByRole("button", { name: "Restart", exact: true }).click();
    const deadline = Date.now() + 30_000;
    for (let now = await sessions(); now === null || now.some((id) => before.includes(id)); now = await sessions()) {
      assert.ok(Date.now() < deadline, "the old sessions end with the restart");
      await page.waitForTimeout(200);
    }
    await page.getByRole("button", { name: "Restart", exact: true }).waitFor();
    await page.locator('li.node[data-path="/root/docs"]').waitFor();
    assert.equal(await page.locator(".error[role=alert]").count(), 0, "no error after the restart");
    await shot(page, "workspace-after-a-restart");

    // A checkpoint to copy from, then the dashboard.
    await page.getByRole("tab", { name: "History" }).click();
    await page.getByPlaceholder("What is this state? (optional)").fill("docs made");
    await page.getByRole("button", { name: "Checkpoint now" }).click();
    await page.getByRole("slider", { name: "Checkpoint" }).waitFor();
    await page.getByRole("link", { name: "← All sprites" }).click();
    const card = page.locator('li.card[data-sprite="tools"]');
    await card.getByText("Running").waitFor();

    // Live state: the sprite is put to sleep through the API; the card follows.
    const csrf = (await page.evaluate(async () => (await fetch("/v1/auth/session")).json())).profile.csrf_token;
    await page.evaluate(
      async (csrf) => fetch("/v1/sprites/tools/sleep", { method: "POST", headers: { "x-csrf-token": csrf } }),
      csrf,
    );
    await card.getByText("Asleep", { exact: false }).waitFor();
    await shot(page, "dashboard-shows-the-sprite-asleep");

    // A copy of the sprite as it was at its checkpoint.
    await page.getByLabel("New sprite").fill("tools-copy");
    await page.getByLabel("Start from").selectOption("tools");
    await page.getByLabel("As it was at").selectOption("v0");
    await page.getByRole("button", { name: "Create sprite" }).click();
    await page.locator('li.card[data-sprite="tools-copy"]').waitFor({ timeout: 60_000 });
    const copied = await page.evaluate(async () => {
      const res = await fetch("/v1/sprites/tools-copy/fs/list?path=/root/docs");
      return res.status;
    });
    assert.equal(copied, 200, "the copy has the folder made before the checkpoint");

    // An API token: shown once, listed, revoked.
    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByLabel("Name").fill("laptop");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = await page.locator("code.secret").innerText();
    assert.match(secret, /^sprt_/);
    const row = page.locator("table.list tr", { hasText: "laptop" });
    await row.waitFor();
    await row.getByRole("button", { name: "Revoke" }).click();
    await page.getByText("No tokens yet.").waitFor();
    const revoked = await fetch(`${BASE}/v1/sprites`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(revoked.status, 401);

    // Deleting a sprite asks first.
    await page.getByRole("link", { name: "Sprites", exact: true }).click();
    const copyCard = page.locator('li.card[data-sprite="tools-copy"]');
    await copyCard.getByRole("button", { name: "Delete…" }).click();
    await copyCard.getByRole("button", { name: "Delete", exact: true }).click();
    await copyCard.waitFor({ state: "detached", timeout: 60_000 });
    await shot(page, "dashboard-after-deleting-the-copy");
    await fay.done();
  } finally {
    await browser.close();
  }
});
