// Two people chat through the built client in Debian's chromium, driven by
// playwright-core (no downloaded browser). Run by tests/web/test_browser.py:
//   node tests/browser.mjs BASE_URL ARTIFACT_DIR
// Exits non-zero with a message on the first failed expectation.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";

/** A small valid PNG (a colour gradient), so the server can thumbnail it. */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255) / w;
      raw[o + 1] = (y * 255) / h;
      raw[o + 2] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error("usage: browser.mjs BASE_URL ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const T = 15000; // every wait is bounded
const suffix = Date.now().toString(36);
const errors = [];
let offlinePhase = false;

function step(name) {
  console.log(`[browser] ${name}`);
}

function watch(page, who) {
  page.on("pageerror", (e) => errors.push(`${who}: page error: ${e.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    const url = msg.location()?.url ?? "";
    // Expected: the first /register answers 401 with the UIA flows.
    if (/status of 401/.test(text) && url.includes("/register")) return;
    // Expected while the context is offline.
    if (offlinePhase && /ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|Failed to fetch/.test(text)) return;
    errors.push(`${who}: console error: ${text} (${url})`);
  });
}

async function register(page, username) {
  await page.goto(base + "/");
  await page.getByRole("tab", { name: "Register" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByTestId("my-name").waitFor({ timeout: T });
}

async function send(page, text) {
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill(text);
  await box.press("Enter");
}

// Message actions appear on hover; a re-render (a new event arriving, a scroll)
// can take the hover away between hover() and click(), so retry the pair.
async function messageAction(msg, title) {
  for (let attempt = 1; ; attempt++) {
    await msg.scrollIntoViewIfNeeded();
    await msg.hover();
    try {
      await msg.getByTitle(title, { exact: true }).click({ timeout: 3000 });
      return;
    } catch (e) {
      if (attempt >= 5) throw e;
    }
  }
}

/** Wait until the page's sync runs over `transport` (websocket or longpoll). */
async function transport(page, name) {
  await page.locator(`[data-testid="shell"][data-transport="${name}"]`).waitFor();
}

function message(page, text) {
  return page.locator(".msg .body", { hasText: text }).first();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  timeout: 30000,
});
let failed = false;
try {
  const ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ctxB = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true });
  ctxA.setDefaultTimeout(T);
  ctxB.setDefaultTimeout(T);
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  watch(a, "alice");
  watch(b, "bob");

  step("register two users");
  await register(a, `alice${suffix}`);
  await register(b, `bob${suffix}`);
  await transport(a, "websocket");
  await transport(b, "websocket");

  step("alice sets her display name");
  await a.getByTitle("Change display name").click();
  await a.getByLabel("Display name").fill(`Alice ${suffix}`);
  await a.getByRole("button", { name: "Save" }).click();
  await a.getByTestId("my-name").filter({ hasText: `Alice ${suffix}` }).waitFor();

  step("alice creates a public room");
  const roomName = `Tea ${suffix}`;
  await a.getByRole("button", { name: "New room" }).click();
  await a.getByLabel("Name").fill(roomName);
  await a.getByLabel("Topic").fill("Leaves and kettles");
  await a.getByLabel(/Public/).check();
  await a.getByRole("button", { name: "Create" }).click();
  await a.getByRole("heading", { name: roomName }).waitFor();
  await a.getByRole("button", { name: roomName }).waitFor(); // listed in the sidebar

  step("bob joins it from the directory");
  await b.getByRole("button", { name: "Browse" }).click();
  const entry = b.locator(".directory li", { hasText: roomName });
  await entry.getByRole("button", { name: "Join" }).click();
  await b.getByRole("heading", { name: roomName }).waitFor();

  step("they chat both ways, with markdown");
  await send(a, "hello **bob** <img src=x onerror=alert(1)>");
  await message(b, "hello bob").waitFor();
  if ((await b.locator(".msg .body strong", { hasText: "bob" }).count()) < 1) throw new Error("bold not rendered");
  if ((await b.locator(".msg .body img").count()) !== 0) throw new Error("HTML injected from a message body");
  await message(b, "<img src=x onerror=alert(1)>").waitFor();

  step("typing indicator");
  await b.getByRole("textbox", { name: "Message" }).fill("hi al");
  await a.getByTestId("typing").filter({ hasText: /is typing/ }).waitFor();
  await send(b, "hi alice, *tea* is ready");
  await message(a, "hi alice, tea is ready").waitFor();
  await a.locator(".msg .body em", { hasText: "tea" }).first().waitFor();
  await a.getByTestId("typing").filter({ hasText: /^$/ }).waitFor();

  step("screenshots at 1280 px and 360 px");
  await a.screenshot({ path: join(artifacts, "alice-1280.png") });
  await b.screenshot({ path: join(artifacts, "bob-360.png") });
  await b.getByRole("button", { name: "Back to rooms" }).click();
  await b.getByRole("button", { name: roomName }).waitFor();
  await b.screenshot({ path: join(artifacts, "bob-360-rooms.png") });
  await b.getByRole("button", { name: roomName }).click();
  await a.setViewportSize({ width: 360, height: 740 });
  await a.screenshot({ path: join(artifacts, "alice-360.png") });
  await a.setViewportSize({ width: 1280, height: 800 });

  step("bob goes offline, both keep typing, bob comes back");
  offlinePhase = true;
  await ctxB.setOffline(true);
  await b.getByTestId("offline-banner").waitFor();
  const whileAway = [`away one ${suffix}`, `away two ${suffix}`, `away three ${suffix}`];
  for (const text of whileAway) {
    await send(a, text);
    await a.locator(`.msg[data-status="sent"], .msg[data-status="remote"]`, { hasText: text }).first().waitFor();
  }
  await send(b, `typed offline ${suffix}`);
  await b.locator('.msg[data-status="sending"]', { hasText: `typed offline ${suffix}` }).waitFor();
  await b.screenshot({ path: join(artifacts, "bob-360-offline.png") });
  await ctxB.setOffline(false);
  await b.getByTestId("offline-banner").waitFor({ state: "detached" });
  offlinePhase = false;
  for (const text of whileAway) await message(b, text).waitFor();
  await message(a, `typed offline ${suffix}`).waitFor();
  await b.locator('.msg[data-status="sending"]').waitFor({ state: "detached" });
  const echoes = await a.locator(".msg .body", { hasText: `typed offline ${suffix}` }).count();
  if (echoes !== 1) throw new Error(`offline message arrived ${echoes} times`);
  await a.screenshot({ path: join(artifacts, "alice-1280-after.png") });
  await transport(b, "websocket"); // caught up over the socket again

  step("the same over long-poll: bob without the socket goes offline and comes back");
  await b.evaluate(() => localStorage.setItem("plait.transport", "longpoll"));
  await b.reload();
  await transport(b, "longpoll");
  await b.getByRole("button", { name: roomName }).click();
  offlinePhase = true;
  await ctxB.setOffline(true);
  await b.getByTestId("offline-banner").waitFor();
  const whilePolling = [`polled one ${suffix}`, `polled two ${suffix}`];
  for (const text of whilePolling) {
    await send(a, text);
    await a.locator(`.msg[data-status="sent"], .msg[data-status="remote"]`, { hasText: text }).first().waitFor();
  }
  await ctxB.setOffline(false);
  await b.getByTestId("offline-banner").waitFor({ state: "detached" });
  offlinePhase = false;
  for (const text of whilePolling) await message(b, text).waitFor();
  for (const text of whilePolling) {
    const n = await b.locator(".msg .body", { hasText: text }).count();
    if (n !== 1) throw new Error(`"${text}" shown ${n} times after long-poll catch-up`);
  }
  await b.evaluate(() => localStorage.removeItem("plait.transport"));
  await b.reload();
  await transport(b, "websocket");
  await b.getByRole("button", { name: roomName }).click();

  step("reply, edit, react, delete");
  const target = a.locator(".msg", { hasText: `away one ${suffix}` }).first();
  await messageAction(target, "Reply");
  await send(a, "replying here");
  await b.locator(".msg", { hasText: "replying here" }).locator(".reply-quote", { hasText: `away one ${suffix}` }).waitFor();
  const mine = a.locator(".msg", { hasText: `away two ${suffix}` }).first();
  await messageAction(mine, "Edit");
  const box = a.getByRole("textbox", { name: "Message" });
  await box.fill(`away two edited ${suffix}`);
  await box.press("Enter");
  await b.locator(".msg", { hasText: `away two edited ${suffix}` }).locator(".edited").waitFor();
  const bobs = b.locator(".msg", { hasText: "hi alice" }).first();
  await messageAction(bobs, "React 👍");
  await a.locator(".msg", { hasText: "hi alice" }).locator(".reaction", { hasText: "1" }).waitFor();
  await a.locator(".msg", { hasText: "hi alice" }).locator(".reaction").click(); // alice adds hers: 2
  await b.locator(".msg", { hasText: "hi alice" }).locator(".reaction", { hasText: "2" }).waitFor();
  await b.locator(".msg", { hasText: "hi alice" }).locator(".reaction.mine").click(); // bob takes his back
  await a.locator(".msg", { hasText: "hi alice" }).locator(".reaction.mine", { hasText: "1" }).waitFor();
  const three = a.locator(".msg", { hasText: `away three ${suffix}` }).first();
  a.once("dialog", (d) => void d.accept());
  await messageAction(three, "Delete");
  await b.locator(".msg", { hasText: `away three ${suffix}` }).waitFor({ state: "detached" });
  await b.getByText("Message deleted").first().waitFor();

  step("image upload and authenticated thumbnail");
  await a.getByTestId("image-input").setInputFiles({ name: "gradient.png", mimeType: "image/png", buffer: png(96, 64) });
  await b.locator('.msg .image img[alt="gradient.png"]').waitFor();
  const src = await b.locator('.msg .image img[alt="gradient.png"]').getAttribute("src");
  if (!src?.startsWith("blob:")) throw new Error(`thumbnail not shown through a blob URL: ${src}`);
  await b.waitForFunction(() => {
    const img = document.querySelector('.msg .image img[alt="gradient.png"]');
    return img instanceof HTMLImageElement && img.complete && img.naturalWidth > 0;
  });

  step("full image behind the thumbnail");
  await b.locator(".msg", { has: b.locator('.image img[alt="gradient.png"]') }).getByRole("button", { name: "Full image" }).click();
  await b.waitForFunction(() => {
    const img = document.querySelector('[data-testid="full-image"]');
    return img instanceof HTMLImageElement && img.complete && img.naturalWidth === 96;
  });
  await b.getByRole("dialog").getByRole("button", { name: "Close" }).click();

  step("alice types, bob sees it at 360 px");
  await a.getByRole("textbox", { name: "Message" }).fill("one mo");
  await b.getByTestId("typing").filter({ hasText: /is typing/ }).waitFor();
  await send(a, `kettle${suffix} whistles`);
  await message(b, `kettle${suffix} whistles`).waitFor();
  await b.getByTestId("typing").filter({ hasText: /^$/ }).waitFor();

  step("bob attaches a file at 360 px, alice downloads it at 1280 px");
  const fileText = `notes for the tea party ${suffix}\n`;
  await b.getByTestId("file-input").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from(fileText) });
  const fileRow = a.getByTestId("file").filter({ hasText: "notes.txt" });
  await fileRow.getByRole("button", { name: "Download notes.txt" }).waitFor();
  const [download] = await Promise.all([a.waitForEvent("download"), fileRow.getByRole("button", { name: "Download notes.txt" }).click()]);
  if (download.suggestedFilename() !== "notes.txt") throw new Error(`downloaded as ${download.suggestedFilename()}`);
  const got = readFileSync(await download.path(), "utf8");
  if (got !== fileText) throw new Error(`downloaded file differs: ${JSON.stringify(got)}`);
  await b.screenshot({ path: join(artifacts, "bob-360-file.png") });

  step("alice searches the room at 1280 px and jumps to a result");
  await a.getByRole("button", { name: "Search this room" }).click();
  await a.getByRole("searchbox", { name: "Search messages" }).fill("ready");
  await a.getByRole("searchbox", { name: "Search messages" }).press("Enter");
  const hit = a.locator(".search-hit", { hasText: "hi alice" });
  await hit.locator("mark", { hasText: /^ready$/ }).waitFor();
  await hit.click();
  await a.locator(".timeline .msg.focused", { hasText: "hi alice" }).waitFor();
  await a.screenshot({ path: join(artifacts, "alice-1280-search.png") });
  await a.getByRole("button", { name: "Close search" }).click();

  step("bob searches all rooms at 360 px and jumps to a result");
  await b.getByRole("button", { name: "Back to rooms" }).click();
  await b.getByRole("button", { name: "Search", exact: true }).click();
  await b.getByRole("searchbox", { name: "Search messages" }).fill(`kettle${suffix}`);
  await b.getByRole("button", { name: "Search", exact: true }).last().click();
  const bobHit = b.locator(".search-hit", { hasText: "whistles" });
  await bobHit.locator("mark", { hasText: `kettle${suffix}` }).waitFor();
  await bobHit.locator(".hit-room", { hasText: roomName }).waitFor();
  await b.screenshot({ path: join(artifacts, "bob-360-search.png") });
  await bobHit.click();
  await b.getByRole("heading", { name: roomName }).waitFor();
  await b.locator(".timeline .msg.focused", { hasText: "whistles" }).waitFor();
  await b.getByRole("button", { name: "Back to rooms" }).click(); // back to the results, then the list
  await bobHit.waitFor();
  await b.getByRole("button", { name: "Close search" }).click();
  await b.getByRole("button", { name: roomName }).click();
  await b.getByRole("heading", { name: roomName }).waitFor();

  step("a thread: alice replies in a side panel, bob reads and answers on his own screen");
  await messageAction(a.locator(".timeline .msg", { hasText: "hi alice" }).first(), "Reply in thread");
  const aThread = a.getByRole("log", { name: "Thread messages" });
  await aThread.locator(".msg", { hasText: "hi alice" }).waitFor();
  await a.getByRole("textbox", { name: "Reply in thread" }).fill(`green or black ${suffix}?`);
  await a.getByRole("textbox", { name: "Reply in thread" }).press("Enter");
  await aThread.locator('.msg[data-status="sent"], .msg[data-status="remote"]', { hasText: `green or black ${suffix}?` }).waitFor();
  const summary = b.locator(".timeline .msg", { hasText: "hi alice" }).getByRole("button", { name: "1 reply in thread" });
  await summary.click();
  const bThread = b.getByRole("log", { name: "Thread messages" });
  await bThread.locator(".msg", { hasText: `green or black ${suffix}?` }).waitFor();
  await b.getByRole("textbox", { name: "Reply in thread" }).fill("green, always");
  await b.getByRole("textbox", { name: "Reply in thread" }).press("Enter");
  await aThread.locator(".msg", { hasText: "green, always" }).waitFor();
  await a.locator(".timeline .msg", { hasText: "hi alice" }).getByRole("button", { name: "2 replies in thread" }).waitFor();
  if ((await a.locator(".timeline .msg .body", { hasText: "green, always" }).count()) !== 0) throw new Error("thread reply in the main timeline");
  await messageAction(aThread.locator(".msg", { hasText: `green or black ${suffix}?` }), "Edit");
  await a.getByRole("textbox", { name: "Reply in thread" }).fill(`green or black tea ${suffix}?`);
  await a.getByRole("textbox", { name: "Reply in thread" }).press("Enter");
  await bThread.locator(".msg", { hasText: `green or black tea ${suffix}?` }).locator(".edited").waitFor();
  await a.screenshot({ path: join(artifacts, "alice-1280-thread.png") });
  await b.screenshot({ path: join(artifacts, "bob-360-thread.png") });
  await b.getByRole("button", { name: "Close thread" }).click();
  await b.getByRole("heading", { name: roomName }).waitFor();
  if ((await b.locator(".timeline .msg .body", { hasText: "green, always" }).count()) !== 0) throw new Error("thread reply in bob's main timeline");
  await a.getByRole("button", { name: "Close thread" }).click();

  step("a direct message: invite, accept, listed under People, unread badge");
  const bobId = (await b.locator(".me-name small").textContent())?.trim();
  await b.getByRole("button", { name: "Back to rooms" }).click();
  await a.getByRole("button", { name: "New DM" }).click();
  await a.getByLabel("User ID").fill(bobId);
  await a.getByRole("button", { name: "Start" }).click();
  const invite = b.locator(".invite-row").first();
  await invite.getByRole("button", { name: "Accept" }).click();
  await b.getByRole("heading", { name: /alice/i }).waitFor();
  await b.getByRole("button", { name: "Back to rooms" }).click();
  const people = b.locator("section", { has: b.getByRole("heading", { name: "People" }) });
  await people.getByRole("button", { name: /alice/i }).waitFor();
  await a.locator("section", { has: a.getByRole("heading", { name: "People" }) }).getByRole("button", { name: /bob/ }).waitFor();
  // Both tabs are visible, so both are online; each sees the other's dot.
  await a.locator("section", { has: a.getByRole("heading", { name: "People" }) }).locator('[data-presence="online"]').waitFor();
  await people.locator('[data-presence="online"]').waitFor();
  await send(a, "psst, bob");
  await people.getByLabel("1 unread").waitFor();
  await b.screenshot({ path: join(artifacts, "bob-360-list-unread.png") });
  await people.getByRole("button", { name: /alice/i }).click();
  await message(b, "psst, bob").waitFor();
  await b.getByRole("button", { name: "Back to rooms" }).click();
  await people.getByLabel("1 unread").waitFor({ state: "detached" });

  step("bob's tab goes hidden: he shows as away, a DM and a mention notify him, a click opens the room");
  // A stand-in for the browser's Notification (headless chromium shows none).
  await b.evaluate(() => {
    window.__notes = [];
    window.Notification = class {
      static permission = "default";
      static async requestPermission() {
        this.permission = "granted";
        return "granted";
      }
      constructor(title, options) {
        Object.assign(this, { title, options, onclick: null });
        window.__notes.push(this);
      }
      close() {}
    };
  });
  await b.getByTestId("notify-toggle").click();
  await b.locator('[data-testid="notify-toggle"][data-state="on"]').waitFor();
  const setHidden = (page, hidden) =>
    page.evaluate((h) => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (h ? "hidden" : "visible") });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
  await setHidden(b, true);
  const alicePeople = a.locator("section", { has: a.getByRole("heading", { name: "People" }) });
  await alicePeople.locator('[data-presence="unavailable"]').waitFor();
  await send(a, "are you there, bob?");
  await b.waitForFunction(() => window.__notes.some((n) => n.options?.body === "are you there, bob?"));
  await a.getByRole("button", { name: roomName }).click();
  await send(a, `tea, bob${suffix}?`);
  await b.waitForFunction((t) => window.__notes.some((n) => n.options?.body === t), `tea, bob${suffix}?`);
  const titles = await b.evaluate(() => window.__notes.map((n) => n.title));
  if (titles.length !== 2 || !titles[1].includes(roomName)) throw new Error(`notifications: ${JSON.stringify(titles)}`);
  await b.evaluate(() => window.__notes[0].onclick({}));
  await setHidden(b, false);
  await b.getByRole("heading", { name: /alice/i }).waitFor();
  await message(b, "are you there, bob?").waitFor();
  await alicePeople.locator('[data-presence="online"]').waitFor();
  await b.getByRole("button", { name: "Back to rooms" }).click();

  step("a private room: invite from the room header, accept, chat");
  await a.getByRole("button", { name: "New room" }).click();
  await a.getByLabel("Name").fill(`Plans ${suffix}`);
  await a.getByRole("button", { name: "Create" }).click();
  await a.getByRole("heading", { name: `Plans ${suffix}` }).waitFor();
  await a.getByRole("button", { name: "Invite" }).click();
  await a.getByLabel("User ID").fill(bobId);
  await a.getByRole("dialog").getByRole("button", { name: "Invite" }).click();
  await a.getByRole("dialog").waitFor({ state: "detached" });
  const planInvite = b.locator(".invite-row", { hasText: `Plans ${suffix}` });
  await planInvite.getByRole("button", { name: "Accept" }).click();
  await b.getByRole("heading", { name: `Plans ${suffix}` }).waitFor();
  await send(b, "count me in");
  await message(a, "count me in").waitFor();
  await b.getByRole("button", { name: "Back to rooms" }).click();

  step("history: scroll back through 45 messages to the start");
  await a.getByRole("button", { name: roomName }).click();
  for (let i = 1; i <= 45; i++) await send(a, `history ${i} ${suffix}`);
  await a.locator('.msg[data-status="sending"]').first().waitFor({ state: "detached", timeout: 30000 });
  await b.reload();
  await b.getByRole("button", { name: roomName }).click();
  await message(b, `history 45 ${suffix}`).waitFor();
  for (let i = 0; i < 20; i++) {
    if (await b.getByText("This is the start of the room.").isVisible()) break;
    await b.locator(".timeline").evaluate((el) => (el.scrollTop = 0));
    await b.waitForTimeout(300);
  }
  await b.getByText("This is the start of the room.").waitFor();
  await message(b, `history 1 ${suffix}`).waitFor();
  await message(b, "hello bob").waitFor();
  await b.getByRole("button", { name: /Jump to latest/ }).click();
  await message(b, `history 45 ${suffix}`).waitFor();

  step("search pages with Load more");
  await b.getByRole("button", { name: "Search this room" }).click();
  await b.getByRole("searchbox", { name: "Search messages" }).fill("history");
  await b.getByRole("searchbox", { name: "Search messages" }).press("Enter");
  await b.getByTestId("search-count").filter({ hasText: "45 results" }).waitFor();
  await b.locator(".search-hit").nth(19).waitFor();
  if ((await b.locator(".search-hit").count()) !== 20) throw new Error("first search page is not 20 results");
  await b.getByRole("button", { name: "Load more" }).click();
  await b.locator(".search-hit").nth(39).waitFor();
  await b.getByRole("button", { name: "Load more" }).click();
  await b.locator(".search-hit").nth(44).waitFor();
  await b.getByRole("button", { name: "Load more" }).waitFor({ state: "detached" });
  await b.getByRole("button", { name: "Close search" }).click();
  await b.getByRole("heading", { name: roomName }).waitFor();

  step("theme toggle, log out, log back in");
  await a.getByRole("button", { name: "Theme: system" }).click();
  await a.waitForFunction(() => document.documentElement.dataset.theme === "light");
  await a.getByRole("button", { name: "Theme: light" }).click();
  await a.waitForFunction(() => document.documentElement.dataset.theme === "dark");
  await a.screenshot({ path: join(artifacts, "alice-1280-dark.png") });
  await b.getByRole("button", { name: "Back to rooms" }).click();
  await b.getByRole("button", { name: "Log out" }).click();
  await b.getByRole("button", { name: "Log in" }).waitFor();
  await b.getByLabel("Username").fill(`bob${suffix}`);
  await b.getByLabel("Password").fill("correct horse battery");
  await b.getByRole("button", { name: "Log in" }).last().click();
  await b.getByRole("button", { name: roomName }).waitFor();

  step("leave the room");
  await b.getByRole("button", { name: roomName }).click();
  b.once("dialog", (d) => void d.accept());
  await b.getByRole("button", { name: "Leave" }).click();
  await b.getByRole("button", { name: roomName }).waitFor({ state: "detached" });
  await a.locator(".state-row", { hasText: `bob${suffix} left` }).waitFor();

  await a.screenshot({ path: join(artifacts, "alice-1280-final.png") });
  await b.screenshot({ path: join(artifacts, "bob-360-final.png") });

  if (errors.length) throw new Error("console errors:\n" + errors.join("\n"));
  step("ok");
} catch (e) {
  failed = true;
  console.error(`[browser] FAILED: ${e instanceof Error ? e.stack : e}`);
  if (errors.length) console.error(errors.join("\n"));
  for (const [i, ctx] of browser.contexts().entries()) {
    for (const [j, p] of ctx.pages().entries()) {
      await p.screenshot({ path: join(artifacts, `failure-${i}-${j}.png`) }).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
