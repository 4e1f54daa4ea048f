// Browser test: examples/spa in headless Chromium (Debian's), served by the `local` binary in
// demo mode, signing in for real with Auth0's SPA SDK against the stand-in tenant and calling the
// function on another origin. Each step is reported; the run fails if any step failed.
// Screenshots go to $SCREENSHOTS_DIR (default target/browser-screenshots).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const root = new URL("../..", import.meta.url).pathname;
const binary = process.env.LOCAL_BIN || `${root}target/debug/local`;
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.SCREENSHOTS_DIR || `${root}target/browser-screenshots`;
const tokensFile = join(mkdtempSync(join(tmpdir(), "spa-test-")), "idp-tokens");
mkdirSync(shots, { recursive: true });

function startLocal() {
  const args = ["--port", "0", "--spa-port", "0", "--other-spa-port", "0", "--idp-tokens-file", tokensFile];
  const child = spawn(binary, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  child.stderr.pipe(process.stderr);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("local did not get ready in 60 s")), 60_000);
    child.on("error", (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
    child.on("exit", (code) => reject(new Error(`local exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith("READY ")) {
        clearTimeout(timer);
        resolve({ child, ready: JSON.parse(line.slice(6)) });
      }
    });
  });
}

let passed = 0;
let failed = 0;
async function step(name, run) {
  try {
    await run();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}\n${String(error.stack || error).replace(/^/gm, "    ")}`);
  }
}

const state = (page, value) => page.waitForSelector(`body[data-state=${value}]`, { timeout: 15_000 });
const text = async (page, selector) => (await page.textContent(selector)).trim();

/** Signs in through the stand-in tenant's /authorize page as `user`. */
async function signIn(page, ready, user, trigger = "#sign-in") {
  await page.click(trigger);
  await page.waitForURL((url) => url.href.startsWith(`${ready.tenant}/authorize`));
  await page.click(`button[value="${user}"]`);
  await page.waitForURL((url) => url.href.startsWith(ready.spa) || url.href.startsWith(ready.other_spa));
}

const { child, ready } = await startLocal();
const browser = await chromium.launch({
  executablePath: browserPath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// Every response any page or frame received, from every origin, to search for IdP tokens.
const received = [];
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  context.on("response", async (response) => {
    const entry = { url: response.url(), status: response.status(), headers: await response.allHeaders(), body: "" };
    received.push(entry);
    entry.body = await response.text().catch(() => "");
  });
  const page = await context.newPage();
  const authorizeRequests = [];
  page.on("request", (request) => {
    const url = request.url();
    if (request.method() === "GET" && url.startsWith(`${ready.tenant}/authorize`)) authorizeRequests.push(new URL(url));
  });

  await step("the page opens signed out", async () => {
    await page.goto(`${ready.spa}/`);
    await state(page, "signed-out");
    await page.screenshot({ path: `${shots}/1-signed-out.png` });
  });

  await step("sign in through /authorize: code flow with PKCE, state and nonce, the API's audience", async () => {
    await page.click("#sign-in");
    await page.waitForURL((url) => url.href.startsWith(`${ready.tenant}/authorize`));
    await page.screenshot({ path: `${shots}/2-authorize.png` });
    const authorize = authorizeRequests.at(-1).searchParams;
    assert.equal(authorize.get("response_type"), "code");
    assert.equal(authorize.get("code_challenge_method"), "S256");
    assert.ok(authorize.get("code_challenge") && authorize.get("state") && authorize.get("nonce"));
    assert.equal(authorize.get("audience"), "https://auth0-idp-proxy.local/api");
    assert.equal(authorize.get("redirect_uri"), ready.spa);
    await page.click('button[value="github|1001"]');
    await state(page, "signed-in");
    assert.equal(page.url(), `${ready.spa}/`, "code and state left in the address bar");
    assert.equal(await text(page, "#user-sub"), "github|1001");
    assert.equal(await text(page, "#user-name"), "The Octocat");
  });

  await step("identities and the GitHub profile are shown", async () => {
    await page.waitForSelector("#repos li");
    const row = await page.$$eval("#identities tbody tr", (rows) => rows.map((r) => r.innerText));
    assert.deepEqual(row, ["github\t1001\tpossible\tno"]);
    assert.equal(await text(page, "#profile-name"), "The Octocat (stand-in)");
    assert.equal(await text(page, "#profile-login"), "@octocat");
    await page.waitForFunction(() => document.getElementById("avatar").naturalWidth > 0);
    assert.equal(await page.$$eval("#repos li", (items) => items.length), 30);
    assert.equal(await text(page, "#repos-page"), "page 1");
    assert.equal(await page.isHidden("#error"), true);
    await page.screenshot({ path: `${shots}/3-signed-in.png`, fullPage: true });
  });

  await step("the API's answers carry CORS for the page's origin", async () => {
    const api = received.filter((r) => r.url.startsWith(`${ready.api}/`));
    assert.ok(api.length >= 3, `${api.length} API responses`);
    for (const response of api) assert.equal(response.headers["access-control-allow-origin"], ready.spa, response.url);
  });

  await step("the next page of repositories follows the rewritten Link header through the API", async () => {
    const first = received.find((r) => r.url.startsWith(`${ready.api}/idp/github/user/repos`));
    // Issue #14: the function rewrites GitHub's `Link` to its own URL for the same route.
    assert.equal(first.headers.link?.split(",")[0],
      `<${ready.api}/idp/github/user/repos?per_page=30&page=2>; rel="next"`, "Link not rewritten to the API");
    await page.click("#next-page");
    await page.waitForFunction(() => document.getElementById("repos-page").textContent === "page 2");
    const repos = await page.$$eval("#repos li a", (links) => links.map((a) => a.textContent));
    assert.equal(repos.length, 12);
    assert.equal(repos[0], "octocat/project-31");
    assert.equal(await page.isHidden("#next-page"), true);
  });

  await step("a reload signs in silently (getTokenSilently through the tenant's session)", async () => {
    const before = authorizeRequests.length;
    await page.reload();
    await state(page, "signed-in");
    const silent = authorizeRequests.slice(before).map((url) => url.searchParams);
    assert.ok(silent.length >= 1 && silent.every((p) => p.get("prompt") === "none" && p.get("response_mode") === "web_message"));
    assert.equal(await text(page, "#user-sub"), "github|1001");
  });

  await step("sign out ends the session at the tenant too", async () => {
    await page.click("#sign-out");
    await state(page, "signed-out");
    await page.reload();
    await state(page, "signed-out");
  });

  await step("a revoked GitHub token: a plain sentence, then Reconnect GitHub through /authorize", async () => {
    await signIn(page, ready, "github|2002");
    await state(page, "signed-in");
    await page.waitForSelector("#error[data-error=reconsent_required]");
    assert.match(await text(page, "#error-text"), /GitHub no longer accepts .* Reconnect GitHub/);
    assert.equal(await text(page, "#error-action"), "Reconnect GitHub");
    await page.screenshot({ path: `${shots}/4-reconsent.png` });
    await signIn(page, ready, "github|2002", "#error-action");
    assert.equal(authorizeRequests.at(-1).searchParams.get("connection"), "github");
    await state(page, "signed-in");
    await page.waitForSelector("#repos li");
    assert.equal(await page.isHidden("#error"), true);
    assert.equal(await text(page, "#profile-login"), "@hubot");
    await page.click("#sign-out");
    await state(page, "signed-out");
  });

  await step("an origin the API does not allow: the browser refuses the answers", async () => {
    const other = await context.newPage();
    await other.goto(`${ready.other_spa}/`);
    await state(other, "signed-out");
    await signIn(other, ready, "github|1001");
    await state(other, "signed-in");
    await other.waitForSelector("#error[data-error=unreachable]");
    assert.match(await text(other, "#error-text"), /ALLOWED_ORIGINS includes/);
    assert.ok(!(await other.content()).includes("octocat"));
    const leaked = received.filter((r) => r.url.startsWith(`${ready.api}/`) &&
      r.headers["access-control-allow-origin"] === ready.other_spa);
    assert.deepEqual(leaked.map((r) => r.url), [], "the API allowed the other origin");
    await other.close();
  });

  await step("no IdP token in the DOM, in storage, in cookies or in any response the pages received", async () => {
    const tokens = readFileSync(tokensFile, "utf8").split("\n").filter(Boolean);
    assert.ok(tokens.length >= 3, `expected the demo's, the revoked and the reconnect's tokens: ${tokens.length}`);
    const storage = JSON.stringify(await context.storageState());
    const session = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
    const dom = (await Promise.all(page.frames().map((frame) => frame.content()))).join("\n");
    for (const token of tokens) {
      assert.ok(!dom.includes(token), "IdP token in the DOM");
      assert.ok(!storage.includes(token) && !session.includes(token), "IdP token in storage or cookies");
      for (const response of received) {
        assert.ok(!response.body.includes(token), `IdP token in the body of ${response.url}`);
        assert.ok(!JSON.stringify(response.headers).includes(token), `IdP token in the headers of ${response.url}`);
      }
    }
    assert.ok(received.length > 20, `${received.length} responses recorded`);
  });
} catch (error) {
  failed += 1;
  console.error(error);
} finally {
  await browser.close();
  child.kill();
}
console.log(`screenshots: ${shots}`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
