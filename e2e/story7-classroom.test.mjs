// Story 7 (classrooms), with a teacher and two students in browsers of
// their own: (1) the teacher starts a class and publishes an assignment,
// two students join (with the code, with the link) and start it, one changes a file, the
// teacher opens that student's workspace and sees it, resets the other,
// and collects both; (2) a student can open another student's sprite
// neither by its workspace address, nor the API, nor its URL; (3) two
// members of a group's sprite type in the same terminal session and each
// sees the other's input and who is there, and a file one saves shows as
// changed in the other's editor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, person, shot, signUp, createSprite, run, waitForScreen, acceptDialogs, accessible, spriteUrl } from "./lib.mjs";

const PROMPT = /root@[\w-]+:\S*[#$]/;

async function startClass(page, slug) {
  await page.getByText("Classes: join one, or start one to teach").click();
  await page.getByLabel("Class name").fill("Web design");
  await page.getByLabel("Short name (in addresses)").fill(slug);
  await page.getByRole("button", { name: "Start a class" }).click();
  const code = page.locator("[data-join-code]:not([data-join-code=''])");
  await code.waitFor();
  return code.getAttribute("data-join-code");
}

async function joinClass(page, code) {
  await page.getByText("Classes: join one, or start one to teach").click();
  await page.getByLabel("Class code").fill(code);
  await page.getByRole("button", { name: "Join the class" }).click();
  await page.getByRole("heading", { name: /you study/ }).waitFor();
}

test("a teacher runs an assignment: students start it, work, get reset and collected", async () => {
  const browser = await launch();
  try {
    const tess = await person(browser, "tess");
    const t = tess.page;
    acceptDialogs(t);
    await signUp(t, "tess");
    const slug = `web-${Date.now().toString(36)}`;
    const code = await startClass(t, slug);
    assert.match(code, /^[a-z0-9]{8}$/);
    const link = await t.locator("a.join-link").getAttribute("href");
    assert.ok(link.endsWith(`/join/${code}`), link);
    await shot(t, "class-started");
    await accessible(t, "the class panel");

    // The teacher prepares a sprite and checkpoints it.
    await createSprite(t, "prep");
    await waitForScreen(t, PROMPT);
    await run(t, "echo '<h1>Lab 1</h1>' > /root/index.html && echo prepared");
    await waitForScreen(t, /^prepared$/m);
    await t.getByRole("tab", { name: "History" }).click();
    await t.getByPlaceholder("What is this state? (optional)").fill("lab 1 start");
    await t.getByRole("button", { name: "Checkpoint now" }).click();
    await t.locator(".timeline").waitFor();
    await t.getByRole("link", { name: "← All sprites" }).click();

    // ... and publishes that checkpoint as an assignment.
    await t.getByLabel("Title").fill("Lab 1: your first page");
    await t.getByLabel(/^Short name \(students/).fill("lab1");
    await t.getByLabel("Instructions").fill("Put your name in index.html.");
    await t.getByLabel("From the sprite").selectOption("prep");
    await t.getByLabel("At the checkpoint").locator("option").first().waitFor({ state: "attached" });
    await t.getByRole("button", { name: "Publish" }).click();
    await t.getByText("Published: your students can start it now.").waitFor();
    await shot(t, "assignment-published");

    // Two students join: ana has an account (by invitation) and types the
    // code; ben has none, and the class's link is his invitation.
    const students = [];
    for (const name of ["ana", "ben"]) {
      const p = await person(browser, name);
      let handle;
      if (name === "ana") {
        handle = await signUp(p.page, name);
        await joinClass(p.page, code);
      } else {
        await p.page.goto(link);
        await p.page.getByRole("link", { name: "create an account" }).click();
        await p.page.getByText("You are joining a class").waitFor();
        // The sign-up form starts in its first field.
        await p.page.waitForFunction(() => document.activeElement?.getAttribute("name") === "email");
        await shot(p.page, "sign-up-from-the-class-link");
        await accessible(p.page, "sign-up from a class link");
        handle = await signUp(p.page, name, { from: p.page.url() });
        try {
          await p.page.getByRole("heading", { name: /you study/ }).waitFor({ timeout: 60_000 });
        } catch (e) {
          await shot(p.page, "join-by-link-failed");
          const session = await p.page.evaluate(async () => {
            const r = await fetch("/v1/auth/session");
            return `${r.status} ${await r.text()}`;
          });
          throw new Error(`${e.message}\nthe page at ${p.page.url()} shows:\n${await p.page.locator("body").innerText()}\nsession: ${session}\nerrors: ${p.errors.join("\n")}`);
        }
        // A student, not a teacher: the class panel has no join code to give out.
        assert.equal(await p.page.locator("[data-join-code]").count(), 0);
      }
      const lab = p.page.locator('li.assignment[data-assignment="lab1"]');
      await lab.getByRole("button", { name: "Start" }).click();
      await p.page.waitForURL(new RegExp(`/s/lab1-${handle}`));
      await waitForScreen(p.page, PROMPT);
      students.push({ ...p, handle });
    }
    const [ana, ben] = students;
    await run(ana.page, "echo '<p>ana was here</p>' >> /root/index.html && echo saved");
    await waitForScreen(ana.page, /^saved$/m);
    await run(ben.page, "echo broken > /root/index.html && echo done");
    await waitForScreen(ben.page, /^done$/m);
    await shot(ana.page, "student-works");

    // The teacher sees every student's sprite and opens ana's.
    await t.goto(`${BASE}/`);
    await t.getByRole("link", { name: "Students' sprites (2 started)" }).click();
    const anaRow = t.locator(`tr[data-student="${ana.handle}"]`);
    await anaRow.waitFor();
    assert.match(await anaRow.innerText(), new RegExp(`lab1-${ana.handle}`));
    await shot(t, "teacher-sees-every-student");
    await accessible(t, "the students' sprites");
    await anaRow.getByRole("link", { name: "Open workspace" }).click();
    await t.locator('li.node[data-path="/root/index.html"]').click();
    await t.locator(".monaco .view-lines", { hasText: "ana was here" }).waitFor({ timeout: 30_000 });
    await shot(t, "teacher-in-a-students-workspace");

    // Resets ben: his sprite is back at the start, his work a checkpoint.
    await t.goBack();
    await t.locator(`tr[data-student="${ben.handle}"]`).getByRole("button", { name: "Reset…" }).click();
    await t.getByText(`${ben.handle} is back at the start`).waitFor();
    const benFile = await t.evaluate(async (path) => (await fetch(path)).text(),
      `/v1/sprites/lab1-${ben.handle}/fs/read?path=/root/index.html`);
    assert.equal(benFile, "<h1>Lab 1</h1>\n");

    // Collects everybody's work at the deadline.
    await t.getByLabel("Label").fill("deadline");
    await t.getByRole("button", { name: "Collect everybody's work" }).click();
    await t.getByText("Collected “deadline” from 2 students.").waitFor();
    for (const s of students) {
      assert.match(await t.locator(`li[data-collected="${s.handle}"]`).innerText(), /checkpoint v\d+/);
    }
    await shot(t, "collected");

    // Privacy between students: ben cannot open ana's sprite in any way.
    const b = ben.page;
    await b.goto(`${BASE}/s/lab1-${ana.handle}`);
    await b.getByRole("heading", { name: "No such sprite" }).waitFor();
    const api = await b.evaluate(async (name) => {
      const one = await fetch(`/v1/sprites/${name}`);
      const file = await fetch(`/v1/sprites/${name}/fs/read?path=/root/index.html`);
      const list = await (await fetch("/v1/sprites")).json();
      return { one: one.status, file: file.status, names: list.sprites.map((s) => s.name) };
    }, `lab1-${ana.handle}`);
    assert.deepEqual(api, { one: 404, file: 404, names: [`lab1-${ben.handle}`] });
    await b.goto(spriteUrl(`lab1-${ana.handle}-${slug}`));
    const body = await b.locator("body").innerText();
    assert.doesNotMatch(body, /ana was here/);
    assert.match(body, /No such sprite/);
    await shot(b, "other-students-url-is-refused");
    ben.allow(/status of 404/);
    for (const s of students) await s.done();
    await tess.done();
  } finally {
    await browser.close();
  }
});

test("a group shares a sprite: one terminal session, each other's keys, saves seen", async () => {
  const browser = await launch();
  try {
    const tess = await person(browser, "tess2");
    await signUp(tess.page, "tess2");
    const slug = `group-${Date.now().toString(36)}`;
    const code = await startClass(tess.page, slug);
    const [ana, ben] = [await person(browser, "ana2"), await person(browser, "ben2")];
    ana.handle = await signUp(ana.page, "ana2");
    ben.handle = await signUp(ben.page, "ben2");
    await joinClass(ana.page, code);
    await joinClass(ben.page, code);

    // Ana makes the group's sprite and shares it with ben.
    const a = ana.page;
    await createSprite(a, "group");
    await waitForScreen(a, PROMPT);
    await run(a, "echo ready-to-share");
    await waitForScreen(a, /^ready-to-share$/m);
    await a.getByRole("button", { name: "+ File" }).click();
    await a.getByPlaceholder("New file name").fill("plan.txt");
    await a.getByRole("button", { name: "OK" }).click();
    const mine = a.locator(".monaco .view-lines");
    await mine.waitFor({ timeout: 60_000 });
    await mine.click();
    await a.keyboard.type("plan: build a site");
    await a.keyboard.press("Control+S");
    await a.locator(".tab.dirty").waitFor({ state: "detached" });
    await a.getByRole("tab", { name: "Settings" }).click();
    await a.getByLabel("Share with (user name)").fill(ben.handle);
    await a.getByRole("button", { name: "Share", exact: true }).click();
    await a.locator(`li[data-member="${ben.handle}"]`).waitFor();

    // Ben finds it on his dashboard and attaches to ana's terminal.
    const b = ben.page;
    await b.goto(`${BASE}/`);
    await b.locator('li.card[data-sprite="group"]').getByRole("link", { name: "Open" }).click();
    await waitForScreen(b, PROMPT);
    await b.getByRole("button", { name: "Sessions" }).click();
    await b.locator("button[data-session]").first().click();
    await waitForScreen(b, /ready-to-share/);

    // Both type in the one session and see each other's input.
    await run(b, "echo hello-from-ben");
    await waitForScreen(a, /hello-from-ben/);
    await run(a, "echo hello-from-ana");
    await waitForScreen(b, /hello-from-ana/);
    await a.locator(`.presence[data-presence*="${ben.handle}"]`).waitFor({ timeout: 15_000 });
    await b.locator(`.presence[data-presence*="${ana.handle}"]`).waitFor({ timeout: 15_000 });
    await shot(a, "shared-terminal-ana");
    await shot(b, "shared-terminal-ben");

    // Ben saves plan.txt in his editor; ana's editor shows it changed.
    await b.locator('li.node[data-path="/root/plan.txt"]').click();
    const editor = b.locator(".monaco .view-lines");
    await editor.getByText("plan: build a site").waitFor();
    await editor.click();
    await b.keyboard.press("Control+End");
    await b.keyboard.type("ben: I take the header");
    await b.keyboard.press("Control+S");
    await b.locator(".tab.dirty").waitFor({ state: "detached" });
    await a.getByText("/root/plan.txt changed on the sprite since you opened it.").waitFor({ timeout: 15_000 });
    await a.getByRole("button", { name: "Load the new version" }).click();
    await a.locator(".monaco .view-lines", { hasText: "ben: I take the header" }).waitFor();
    await shot(a, "saved-by-the-other-member");
    await ana.done();
    await ben.done();
    await tess.done();
  } finally {
    await browser.close();
  }
});
