// Browser test: examples/spa in headless Chromium (Debian's), served by the `local` binary in
// demo mode, signing in for real with Auth0's SPA SDK against the stand-in tenant and calling the
// function on another origin, with DPoP (the demo's `useDpop: true`; one step with it off). Each
// step is reported; the run fails if any step failed.
// Screenshots go to $SCREENSHOTS_DIR (default target/browser-screenshots).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
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
/** Every (state, status sentence) pair the page went through since it loaded. */
const states = (page) => page.evaluate(() => window.testStates);
const rows = (page) => page.$$eval("#identities tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));

/** Elements that overlap without one holding the other, and whether the page scrolls sideways. */
function layoutFaults() {
  const shown = [...document.body.querySelectorAll("*")].filter((element) => {
    const style = getComputedStyle(element);
    return style.display !== "none" && style.visibility !== "hidden" && element.getClientRects().length > 0;
  });
  // What a box shows is cut by every ancestor that clips (an ellipsis, a scroller).
  const clip = (element, rect) => {
    let { left, top, right, bottom } = rect;
    for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX === "visible") continue;
      const box = up.getBoundingClientRect();
      left = Math.max(left, box.left); right = Math.min(right, box.right);
      top = Math.max(top, box.top); bottom = Math.min(bottom, box.bottom);
    }
    return { left, top, right, bottom };
  };
  const boxes = shown.map((element) => ({
    element,
    rects: [...element.getClientRects()].map((rect) => clip(element, rect))
      .filter((r) => r.right - r.left > 0.5 && r.bottom - r.top > 0.5),
  }));
  const name = (element) => element.id ? `#${element.id}` :
    `${element.tagName.toLowerCase()}${element.className ? `.${element.className}` : ""} "${element.textContent.trim().slice(0, 30)}"`;
  const faults = [];
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const [a, b] = [boxes[i], boxes[j]];
      if (a.element.contains(b.element) || b.element.contains(a.element)) continue;
      // 1 px of tolerance: table cells share their collapsed borders.
      const hit = a.rects.some((p) => b.rects.some((q) =>
        Math.min(p.right, q.right) - Math.max(p.left, q.left) > 1 &&
        Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top) > 1));
      if (hit) faults.push(`${name(a.element)} overlaps ${name(b.element)}`);
    }
  }
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width) {
    faults.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide in ${width} px`);
  }
  const title = document.querySelector("h1");
  const lines = title.getBoundingClientRect().height / parseFloat(getComputedStyle(title).lineHeight || "0");
  if (lines > 2.1) faults.push(`the title takes ${lines.toFixed(1)} lines`);
  return faults;
}

/** The page at `width` px: a screenshot, then no overlap and nothing sideways. */
async function checkLayout(page, width, shot) {
  await page.setViewportSize({ width, height: 844 });
  if (shot) await page.screenshot({ path: `${shots}/${shot}`, fullPage: true });
  assert.deepEqual(await page.evaluate(layoutFaults), [], `layout at ${width} px`);
}

/** A JWT's (or DPoP proof's) header and claims, unverified. */
function jwtParts(jwt) {
  const [header, claims] = jwt.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url").toString()));
  return { header, claims };
}
const sha256 = (text) => createHash("sha256").update(text).digest("base64url");
/** The RFC 7638 thumbprint of an EC public key, computed here apart from the SDK's and the tenant's. */
const thumbprint = ({ crv, kty, x, y }) => sha256(JSON.stringify({ crv, kty, x, y }));
/** The URL a proof's `htu` names: without query and fragment. */
const htu = (url) => { const u = new URL(url); u.search = ""; u.hash = ""; return u.href; };

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
    const entry = { url: response.url(), method: response.request().method(), status: response.status(), headers: await response.allHeaders(), body: "" };
    received.push(entry);
    entry.body = await response.text().catch(() => "");
  });
  // Each state the page shows, with its status sentence, recorded as it happens.
  await context.addInitScript(() => {
    window.testStates = [];
    const record = () => {
      const entry = { state: document.body.dataset.state, text: document.getElementById("status").textContent };
      const last = window.testStates.at(-1);
      if (!last || last.state !== entry.state || last.text !== entry.text) window.testStates.push(entry);
    };
    document.addEventListener("DOMContentLoaded", () => {
      record();
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
  });
  // Every request to the API and to the tenant's token endpoint, with the headers the page set.
  const apiRequests = [];
  const tokenCalls = [];
  context.on("request", (request) => {
    const entry = { method: request.method(), url: request.url(), headers: request.headers() };
    if (entry.method !== "OPTIONS" && entry.url.startsWith(`${ready.api}/`)) apiRequests.push(entry);
    if (entry.method === "POST" && entry.url === `${ready.tenant}/oauth/token`) tokenCalls.push(entry);
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
    assert.equal(await text(page, "#status"), "Signed out.");
    assert.equal(await page.isHidden("#account"), true);
    assert.equal(await page.isHidden("#signed-in"), true);
    await page.screenshot({ path: `${shots}/1-signed-out.png` });
    await checkLayout(page, 390, "1-signed-out-390px.png");
    await page.setViewportSize({ width: 1100, height: 900 });
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
    await state(page, "ready");
    assert.equal(page.url(), `${ready.spa}/`, "code and state left in the address bar");
    assert.deepEqual((await states(page)).map((s) => `${s.state}: ${s.text}`), [
      "loading: Loading the page…",
      "loading: Loading your linked accounts through the API…",
      "ready: Signed in: GitHub and Google answered through the API.",
    ]);
    assert.equal(await text(page, "#user-sub"), "github|1001");
    assert.equal(await text(page, "#user-name"), "The Octocat");
  });

  await step("every linked connection is shown: GitHub's profile, Google's through Token Vault", async () => {
    await page.waitForSelector("#repos li");
    assert.deepEqual(await rows(page), [
      ["github", "1001", "Management API", "answers"],
      ["google-oauth2", "octocat@example.test", "Token Vault", "answers"],
    ]);
    assert.equal(await text(page, "#google-name"), "The Octocat (stand-in Google)");
    assert.equal(await text(page, "#google-email"), "octocat@example.test");
    assert.equal(await page.getAttribute("#idp-google-oauth2", "data-state"), "ready");
    assert.equal(await text(page, "#profile-name"), "The Octocat (stand-in)");
    assert.equal(await text(page, "#profile-login"), "@octocat");
    await page.waitForFunction(() => document.getElementById("avatar").naturalWidth > 0);
    assert.equal(await page.$$eval("#repos li", (items) => items.length), 30);
    assert.equal(await text(page, "#repos-page"), "page 1");
    assert.equal(await page.isHidden("#error"), true);
    await page.screenshot({ path: `${shots}/3-signed-in.png`, fullPage: true });
  });

  await step("DPoP: each call to the API sends Authorization: DPoP and a fresh proof for its URL, by the key the sign-in bound the token to, and answers", async () => {
    assert.ok(apiRequests.length >= 4, `${apiRequests.length} API requests`);
    const jtis = new Set();
    const keys = new Set();
    for (const call of apiRequests) {
      const [scheme, token] = (call.headers.authorization || "").split(" ");
      assert.equal(scheme, "DPoP", `${call.url}: Authorization ${scheme}`);
      assert.ok(call.headers.dpop, `${call.url}: no DPoP header`);
      const proof = jwtParts(call.headers.dpop);
      assert.equal(proof.header.typ, "dpop+jwt");
      assert.equal(proof.header.alg, "ES256");
      assert.deepEqual(Object.keys(proof.header.jwk).sort(), ["crv", "kty", "x", "y"], "a public key only");
      assert.equal(proof.claims.htm, call.method);
      assert.equal(proof.claims.htu, htu(call.url));
      assert.equal(proof.claims.ath, sha256(token), "ath is the token's hash");
      assert.ok(Math.abs(proof.claims.iat - Date.now() / 1000) < 120, "a recent iat");
      assert.ok(!jtis.has(proof.claims.jti), "a jti used twice");
      jtis.add(proof.claims.jti);
      // The tenant bound the token to the proof's key (cnf.jkt, RFC 7638 thumbprint).
      assert.equal(jwtParts(token).claims.cnf?.jkt, thumbprint(proof.header.jwk), `${call.url}: token not bound to the proof's key`);
      keys.add(thumbprint(proof.header.jwk));
    }
    assert.equal(keys.size, 1, "one key for the session");
    const [jkt] = keys;
    // The sign-in: /authorize named the key (dpop_jkt), the code exchange carried its proof, and
    // the tenant answered a DPoP token.
    const interactive = authorizeRequests.find((url) => url.searchParams.get("prompt") !== "none");
    assert.equal(interactive.searchParams.get("dpop_jkt"), jkt);
    const exchange = tokenCalls[0];
    assert.ok(exchange?.headers.dpop, "no DPoP proof on the token request");
    const proof = jwtParts(exchange.headers.dpop);
    assert.equal(thumbprint(proof.header.jwk), jkt);
    assert.deepEqual([proof.claims.htm, proof.claims.htu], ["POST", `${ready.tenant}/oauth/token`]);
    assert.equal(proof.claims.ath, undefined);
    const issued = received.find((r) => r.url === `${ready.tenant}/oauth/token` && r.method === "POST");
    assert.equal(issued.status, 200);
    assert.equal(JSON.parse(issued.body).token_type, "DPoP");
    // And the function accepted every call.
    const answers = received.filter((r) => r.url.startsWith(`${ready.api}/`) && r.method !== "OPTIONS");
    assert.deepEqual(answers.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.url}`), []);
    assert.ok(answers.length >= 4);
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

  await step("the page holds from a phone (390 px, 360 px) to a wide screen (1200 px, a long name)", async () => {
    await checkLayout(page, 390, "3-signed-in-390px.png");
    await checkLayout(page, 360);
    await page.$eval("#user-name", (name) => { name.textContent = "Octavia Catherine Montgomery-Fitzwilliam of the Stand-in Tenant"; });
    await checkLayout(page, 1200, "3-signed-in-1200px-long-name.png");
    const [title, account] = await Promise.all(["h1", "#account"].map((s) => page.$eval(s, (e) => e.getBoundingClientRect().toJSON())));
    assert.ok(account.top < title.bottom, "the account wrapped below the title at 1200 px");
    await checkLayout(page, 390);
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  await step("a reload signs in silently (getTokenSilently through the tenant's session)", async () => {
    const before = authorizeRequests.length;
    await page.reload();
    await state(page, "ready");
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

  await step("a revoked GitHub token: GitHub's card says so, Google still answers, the table agrees", async () => {
    await signIn(page, ready, "github|2002");
    await state(page, "refused");
    assert.equal(await text(page, "#status"), "GitHub refused this app's access to your account: reconnect it below.");
    assert.equal(await text(page, "#user-name"), "Hubot");
    assert.equal(await page.getAttribute("#idp-github", "data-error"), "reconsent_required");
    assert.match(await text(page, "#idp-github .idp-problem-text"), /GitHub no longer accepts .* Reconnect GitHub/);
    assert.equal(await text(page, "#idp-github .idp-action"), "Reconnect GitHub");
    // No empty profile or repository list while GitHub refuses.
    assert.equal(await page.isHidden("#idp-github .idp-content"), true);
    assert.equal(await page.getAttribute("#idp-google-oauth2", "data-state"), "ready");
    assert.equal(await text(page, "#google-name"), "Hubot (stand-in Google)");
    assert.equal(await page.isHidden("#error"), true);
    assert.deepEqual(await rows(page), [
      ["github", "2002", "Management API", "refused: reconnect"],
      ["google-oauth2", "hubot@example.test", "Token Vault", "answers"],
    ]);
    await page.screenshot({ path: `${shots}/4-refused.png`, fullPage: true });
    await checkLayout(page, 390, "4-refused-390px.png");
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  await step("Reconnect GitHub offers that account only, then the page says reconnected", async () => {
    await page.click("#idp-github .idp-action");
    await page.waitForURL((url) => url.href.startsWith(`${ready.tenant}/authorize`));
    const authorize = authorizeRequests.at(-1).searchParams;
    assert.equal(authorize.get("connection"), "github");
    assert.equal(authorize.get("login_hint"), "hubot@example.test");
    assert.deepEqual(await page.$$eval("button[name=demo_user]", (buttons) => buttons.map((b) => b.value)), ["github|2002"]);
    await page.screenshot({ path: `${shots}/5-reconnect-authorize.png` });
    await page.click('button[value="github|2002"]');
    await state(page, "reconnected");
    assert.equal(await text(page, "#status"), "GitHub reconnected: it answers through the API again.");
    await page.waitForSelector("#repos li");
    assert.equal(await text(page, "#profile-login"), "@hubot");
    assert.equal(await text(page, "#user-name"), "Hubot");
    assert.equal(await page.isHidden("#idp-github .idp-problem"), true);
    assert.deepEqual((await rows(page)).map((row) => row[3]), ["answers", "answers"]);
    await page.screenshot({ path: `${shots}/5-reconnected.png`, fullPage: true });
    await page.click("#sign-out");
    await state(page, "signed-out");
  });

  // Connected Accounts (issue 37): Mona has not connected Google; she connects it from the page,
  // a Drive call needs one more scope, she grants it, and she disconnects.
  const myAccount = `${ready.tenant}/me/v1/connected-accounts`;
  const myAccountRequests = [];
  const tokenRequests = [];
  context.on("request", (request) => {
    const url = request.url();
    if (url.startsWith(myAccount)) myAccountRequests.push({ method: request.method(), url, body: request.postData(), headers: request.headers() });
    if (url === `${ready.tenant}/oauth/token`) tokenRequests.push(new URLSearchParams(request.postData() || ""));
  });
  const apiAnswer = (path) => received.filter((r) => r.url.startsWith(`${ready.api}${path}`)).at(-1);
  const google = "#idp-google-oauth2";
  const googleState = async () => (await text(page, `${google} .vault-state`));

  await step("a user who has not connected Google: the card says so and offers Connect, the table agrees", async () => {
    await signIn(page, ready, "github|3003");
    await state(page, "ready");
    assert.equal(await text(page, "#status"), "Signed in: GitHub answered through the API. Google is not connected: connect it below.");
    const identities = JSON.parse(apiAnswer("/identities").body);
    assert.deepEqual(identities.token_vault, [{ connection: "google-oauth2", connected: false }]);
    assert.equal(await page.getAttribute(google, "data-state"), "not-connected");
    assert.equal(await googleState(), "Google is not connected to your account here.");
    assert.equal(await text(page, `${google} .vault-connect`), "Connect Google");
    assert.equal(await page.isHidden(`${google} .vault-disconnect`), true);
    assert.equal(await page.isHidden(`${google} .idp-content`), true);
    assert.deepEqual(await rows(page), [
      ["github", "3003", "Management API", "answers"],
      ["google-oauth2", "—", "Token Vault", "not connected"],
    ]);
    await page.screenshot({ path: `${shots}/6-not-connected.png`, fullPage: true });
    await checkLayout(page, 390, "6-not-connected-390px.png");
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  /** The consent page of stand-in Google: the scopes it lists, then Allow. */
  async function consent(shot) {
    await page.waitForURL((url) => url.href.startsWith(`${ready.google}/oauth/authorize`));
    const listed = await page.$$eval("li code", (codes) => codes.map((c) => c.textContent));
    if (shot) await page.screenshot({ path: `${shots}/${shot}` });
    await page.click("#allow");
    return listed;
  }

  await step("Connect Google: the SDK's connectAccountWithRedirect (an MRRT token for /me/), Google's consent, back connected", async () => {
    await page.click(`${google} .vault-connect`);
    const listed = await consent("7-consent.png");
    assert.deepEqual(listed, ["openid", "profile", "email"]);
    const connect = myAccountRequests.find((r) => r.url === `${myAccount}/connect`);
    assert.ok(connect, "no POST to the My Account API's connect");
    const body = JSON.parse(connect.body);
    assert.equal(body.connection, "google-oauth2");
    assert.deepEqual(body.scopes, ["openid", "profile", "email"]);
    assert.equal(body.redirect_uri, ready.spa);
    assert.equal(body.code_challenge_method, "S256");
    // The SDK's own My Account client: DPoP, with a proof for that URL.
    assert.match(connect.headers.authorization, /^DPoP /);
    assert.equal(jwtParts(connect.headers.dpop).claims.htu, `${myAccount}/connect`);
    // The SDK got its /me/ token with the refresh token (Multi-Resource Refresh Token).
    const me = tokenRequests.filter((p) => p.get("audience") === `${ready.tenant}/me/`);
    assert.ok(me.length >= 1 && me.every((p) => p.get("grant_type") === "refresh_token"), "no refresh-token grant for /me/");
    await state(page, "connected");
    assert.equal(await text(page, "#status"), "Google connected: it answers through the API.");
    assert.equal(page.url(), `${ready.spa}/`, "connect_code and state left in the address bar");
    assert.ok(myAccountRequests.some((r) => r.method === "POST" && r.url === `${myAccount}/complete`), "not completed");
    assert.equal(await googleState(), "Connected (Auth0 Token Vault). Allowed: openid, profile, email.");
    assert.equal(await text(page, "#google-name"), "Mona Lisa (stand-in Google)");
    assert.equal(await page.getAttribute(google, "data-state"), "ready");
    assert.equal(await page.isHidden("#error"), true);
    assert.deepEqual((await rows(page))[1], ["google-oauth2", "monalisa@example.test", "Token Vault", "answers"]);
    await page.screenshot({ path: `${shots}/7-connected.png`, fullPage: true });
  });

  let asked;
  await step("a Drive call that needs one more scope: the typed consent_required, and the offer to ask for exactly its scopes", async () => {
    await page.click("#drive-list");
    await page.waitForSelector("#drive[data-state=refused]");
    const answer = apiAnswer("/idp/google-oauth2/drive/v3/files");
    assert.equal(answer.status, 403);
    const body = JSON.parse(answer.body);
    assert.equal(body.error, "consent_required");
    assert.equal(body.action, "connect");
    assert.equal(body.connection, "google-oauth2");
    assert.deepEqual(body.missing, ["https://www.googleapis.com/auth/drive.readonly"]);
    assert.equal(body.scopes[0], "https://www.googleapis.com/auth/drive.readonly");
    asked = body.scopes;
    assert.equal(await page.getAttribute("#drive", "data-error"), "consent_required");
    assert.match(await text(page, "#drive .idp-problem-text"), /^Google has not allowed this app drive\.readonly, which this call needs\. Connect Google again/);
    assert.deepEqual(await page.$$eval("#drive .idp-scopes code", (codes) => codes.map((c) => c.textContent)), asked);
    assert.equal(await text(page, "#drive .idp-action"), "Allow drive.readonly at Google");
    // Google's userinfo still answers: only the Drive call is refused.
    assert.equal(await page.getAttribute(google, "data-state"), "ready");
    await page.screenshot({ path: `${shots}/8-consent-required.png`, fullPage: true });
    await checkLayout(page, 390, "8-consent-required-390px.png");
    await checkLayout(page, 360);
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  await step("consent to those scopes: connected again, then the Drive call is made again and answers", async () => {
    const before = myAccountRequests.length;
    // The function reads Token Vault again for a missing scope at most once a second per user
    // and connection (REREAD_INTERVAL); a consent back sooner (an automated one) is answered
    // from the token it holds.
    await page.waitForTimeout(1200);
    await page.click("#drive .idp-action");
    const listed = await consent("9-consent-drive.png");
    assert.deepEqual(listed, asked);
    const connect = myAccountRequests.slice(before).find((r) => r.url === `${myAccount}/connect`);
    assert.deepEqual(JSON.parse(connect.body).scopes, asked);
    await state(page, "connected");
    await page.waitForSelector("#drive[data-state=ready]");
    assert.equal(await text(page, "#drive-note"), "Drive answered through the API: no files to show.");
    assert.equal(apiAnswer("/idp/google-oauth2/drive/v3/files").status, 200);
    assert.equal(await page.isHidden("#drive .idp-problem"), true);
    assert.match(await googleState(), /^Connected \(Auth0 Token Vault\)\. Allowed: .*drive\.readonly/);
    await page.screenshot({ path: `${shots}/9-drive.png`, fullPage: true });
  });

  await step("Disconnect Google (My Account API: list, then DELETE by id): the next call answers reconsent_required, the page shows it", async () => {
    const before = myAccountRequests.length;
    await page.click(`${google} .vault-disconnect`);
    await state(page, "disconnected");
    const calls = myAccountRequests.slice(before).filter((r) => r.method !== "OPTIONS");
    assert.deepEqual(calls.map((r) => `${r.method} ${r.url.replace(/cac_\w+/, "cac_…")}`), [
      `GET ${myAccount}/accounts?connection=google-oauth2`,
      `DELETE ${myAccount}/accounts/cac_…`,
    ]);
    // The page's own My Account calls go through the SDK's fetcher too: DPoP, a proof each.
    for (const call of calls) {
      const [scheme, token] = call.headers.authorization.split(" ");
      assert.equal(scheme, "DPoP", call.url);
      const proof = jwtParts(call.headers.dpop);
      assert.deepEqual([proof.claims.htm, proof.claims.htu, proof.claims.ath], [call.method, htu(call.url), sha256(token)]);
      assert.equal(jwtParts(token).claims.cnf?.jkt, thumbprint(proof.header.jwk));
    }
    // The function keeps an exchanged token until shortly before it expires (the demo's Google
    // tokens live 30 s): until then the page says that the API still answered, and offers to
    // check again; then the next call answers the typed reconsent_required.
    for (let tries = 0; tries < 20 && apiAnswer("/idp/google-oauth2/oauth2/v3/userinfo").status === 200; tries += 1) {
      if (tries === 0) {
        assert.equal(await text(page, "#status"), "Google disconnected at Auth0, but the API still answered with a token it obtained before; it stops when that token expires.");
        assert.equal(await page.getAttribute(google, "data-error"), "token_still_held");
        await page.screenshot({ path: `${shots}/10-disconnected-token-held.png`, fullPage: true });
      }
      await page.waitForTimeout(2000);
      await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${ready.api}/idp/google-oauth2/oauth2/v3/userinfo`)),
        page.click(`${google} > .idp-problem .idp-action`),
      ]);
      await state(page, "disconnected");
    }
    const answer = apiAnswer("/idp/google-oauth2/oauth2/v3/userinfo");
    assert.equal(answer.status, 403);
    const body = JSON.parse(answer.body);
    assert.equal(body.error, "reconsent_required");
    assert.equal(body.action, "connect");
    assert.equal(await text(page, "#status"),
      "Google disconnected: the API answered reconsent_required for it, so nothing can call Google for you until you connect it again.");
    assert.equal(await page.getAttribute(google, "data-error"), "reconsent_required");
    assert.match(await text(page, `${google} > .idp-problem .idp-problem-text`), /^Google is not connected to this app/);
    assert.equal(await text(page, `${google} > .idp-problem .idp-action`), "Connect Google");
    assert.equal(await googleState(), "Google is not connected to your account here.");
    assert.equal(await page.isHidden(`${google} .idp-content`), true);
    assert.deepEqual((await rows(page))[1], ["google-oauth2", "—", "Token Vault", "refused: connect"]);
    await page.screenshot({ path: `${shots}/10-disconnected.png`, fullPage: true });
    await checkLayout(page, 390, "10-disconnected-390px.png");
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.click("#sign-out");
    await state(page, "signed-out");
  });

  await step("an origin the API does not allow: the browser refuses the answers", async () => {
    const other = await context.newPage();
    await other.goto(`${ready.other_spa}/`);
    await state(other, "signed-out");
    await signIn(other, ready, "github|1001");
    await state(other, "failed");
    await other.waitForSelector("#error[data-error=unreachable]");
    assert.match(await text(other, "#error-text"), /ALLOWED_ORIGINS includes/);
    assert.ok(!(await other.content()).includes("octocat"));
    const leaked = received.filter((r) => r.url.startsWith(`${ready.api}/`) &&
      r.headers["access-control-allow-origin"] === ready.other_spa);
    assert.deepEqual(leaked.map((r) => r.url), [], "the API allowed the other origin");
    await other.close();
  });

  await step("with useDpop off (config.json), the page signs in and calls the API with bearer tokens", async () => {
    const plain = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      await plain.route(`${ready.spa}/config.json`, async (route) => {
        const response = await route.fetch();
        await route.fulfill({ response, json: { ...(await response.json()), useDpop: false } });
      });
      const calls = [];
      const answers = [];
      plain.on("request", (request) => {
        const url = request.url();
        if (request.method() === "OPTIONS") return;
        if (url.startsWith(`${ready.api}/`) || url === `${ready.tenant}/oauth/token` || url.startsWith(`${ready.tenant}/authorize`)) {
          calls.push({ url, headers: request.headers() });
        }
      });
      plain.on("response", (response) => {
        if (response.url().startsWith(`${ready.api}/`) && response.request().method() !== "OPTIONS") answers.push(response.status());
      });
      const bearerPage = await plain.newPage();
      await bearerPage.goto(`${ready.spa}/`);
      await state(bearerPage, "signed-out");
      await signIn(bearerPage, ready, "github|1001");
      await state(bearerPage, "ready");
      assert.equal(await text(bearerPage, "#status"), "Signed in: GitHub and Google answered through the API.");
      assert.ok(!calls.some((c) => c.headers.dpop || new URL(c.url).searchParams.has("dpop_jkt")), "a proof or dpop_jkt sent");
      const api = calls.filter((c) => c.url.startsWith(`${ready.api}/`));
      assert.ok(api.length >= 4, `${api.length} API requests`);
      for (const call of api) {
        const [scheme, token] = call.headers.authorization.split(" ");
        assert.equal(scheme, "Bearer", call.url);
        assert.equal(jwtParts(token).claims.cnf, undefined, "an unbound token");
      }
      assert.ok(answers.length >= 4 && answers.every((status) => status === 200), `answers: ${answers}`);
    } finally {
      await plain.close();
    }
  });

  await step("no IdP token in the DOM, in storage, in cookies or in any response the pages received", async () => {
    const tokens = readFileSync(tokensFile, "utf8").split("\n").filter(Boolean);
    assert.ok(tokens.length >= 5, `expected the demo's, the revoked, both Google and the reconnect's tokens: ${tokens.length}`);
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
