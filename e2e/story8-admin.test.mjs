// Story 8: the server's sign-up is by invitation. A newcomer without one
// is told how to get in; the admin invites a person by email from the web
// app and copies the link; the person signs up with it (their address
// already filled in, the focus in the first field they type in); the admin
// sees them among the accounts, disables the account (the person's open
// page is signed out and signing in is refused), and enables it again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN, BASE, launch, person, shot, accessible } from "./lib.mjs";

test("an admin invites a person by email, sees the account, disables and enables it", async () => {
  assert.ok(ADMIN.login && ADMIN.password, "the story has the server's admin (SPRITES_ADMIN_LOGIN)");
  const browser = await launch();
  try {
    // Without an invitation, the sign-up page says how to get one.
    const stranger = await person(browser, "stranger");
    await stranger.page.goto(`${BASE}/signup`);
    await stranger.page.getByText("Sign-up on this server is by invitation").waitFor();
    assert.equal(await stranger.page.getByRole("button", { name: "Create account" }).count(), 0);
    await shot(stranger.page, "sign-up-needs-an-invitation");
    await accessible(stranger.page, "sign-up without an invitation");
    await stranger.done();

    // The admin signs in and opens the admin page from the top bar.
    const root = await person(browser, "admin");
    const a = root.page;
    await a.goto(`${BASE}/signin`);
    await a.getByLabel("Email or user name").fill(ADMIN.login);
    await a.getByLabel("Password").fill(ADMIN.password);
    await a.getByRole("button", { name: "Sign in" }).click();
    await a.getByRole("link", { name: "Admin" }).click();
    await a.getByRole("heading", { name: "People on this server" }).waitFor();
    await accessible(a, "the admin page");

    // Invites someone by email: a link to copy and send.
    const handle = `gus-${Date.now().toString(36)}`;
    const email = `${handle}@example.com`;
    await a.getByLabel("Email address to invite").fill(email);
    await a.getByRole("button", { name: "Invite" }).click();
    const linkField = a.getByLabel("Invitation link");
    await linkField.waitFor();
    const link = await linkField.inputValue();
    assert.match(link, new RegExp(`^${BASE}/signup\\?invite=[0-9a-f]{48}$`));
    await a.getByText(`Send this link to ${email}`).waitFor();
    await a.locator(`li[data-invitation="${email}"]`).waitFor();
    await a.getByRole("button", { name: "Copy" }).click();
    await a.getByRole("button", { name: "Copied" }).waitFor();
    await shot(a, "invitation-made");

    // The person opens the link: invited as that address, focus on the name.
    const gus = await person(browser, "gus");
    const g = gus.page;
    await g.goto(link);
    await g.getByText(`You are invited to Sprites as ${email}.`).waitFor();
    assert.equal(await g.getByLabel("Email").inputValue(), email);
    await g.waitForFunction(() => document.activeElement?.getAttribute("name") === "handle");
    await shot(g, "sign-up-with-an-invitation");
    await accessible(g, "sign-up with an invitation");
    await g.getByLabel("User name").fill(handle);
    await g.getByLabel("Password").fill("a long password");
    await g.getByRole("button", { name: "Create account" }).click();
    await g.getByRole("heading", { name: "Your sprites" }).waitFor();

    // The invitation is used up: the same link no longer signs anyone up.
    const again = await person(browser, "gus-again");
    await again.page.goto(link);
    await again.page.getByText(/invitation \(it was used, withdrawn or has expired/).waitFor();
    again.allow(/404/);
    await again.done();

    // The admin sees the new account, and disables it.
    await a.reload();
    const row = a.locator(`tr[data-user="${handle}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(`${email}[\\s\\S]*Active`));
    assert.equal(await a.locator(`li[data-invitation="${email}"]`).count(), 0, "no longer pending");
    await row.getByRole("button", { name: `Disable ${handle}` }).click();
    await row.locator("td.status", { hasText: "Disabled" }).waitFor();
    await shot(a, "account-disabled");

    // Gus's open page is signed out at its next step, and signing in is refused.
    await g.reload();
    await g.getByRole("heading", { name: "Sign in to Sprites" }).waitFor();
    await g.getByLabel("Email or user name").fill(handle);
    await g.getByLabel("Password").fill("a long password");
    await g.getByRole("button", { name: "Sign in" }).click();
    await g.getByText("this account is disabled").waitFor();
    gus.allow(/403|401/);
    await shot(g, "disabled-account-cannot-sign-in");
    await accessible(g, "the sign-in page with its error");

    // Enabled again, Gus signs in.
    await row.getByRole("button", { name: `Enable ${handle}` }).click();
    await row.locator("td.status", { hasText: "Active" }).waitFor();
    await g.getByRole("button", { name: "Sign in" }).click();
    await g.getByRole("heading", { name: "Your sprites" }).waitFor();
    await gus.done();
    await root.done();
  } finally {
    await browser.close();
  }
});
