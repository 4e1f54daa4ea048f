// Browser test: examples/spa in headless Chromium, served from one local origin, calling the
// function (the `local` binary, demo mode) on another. Proves CORS for the allowed origin and its
// refusal for another, the documented errors in the page, and that the IdP token never appears.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const root = new URL("../..", import.meta.url).pathname;
const binary = process.env.LOCAL_BIN || `${root}target/debug/local`;
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

function startLocal() {
  const child = spawn(binary, ["--port", "0", "--spa-port", "0", "--other-spa-port", "0"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
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

async function result(page) {
  await page.waitForFunction(() => document.getElementById("status").textContent !== "");
  return {
    status: await page.textContent("#status"),
    error: await page.textContent("#error"),
    body: await page.textContent("#result"),
  };
}

async function click(page, id) {
  await page.evaluate(() => { document.getElementById("status").textContent = ""; });
  await page.click(id);
  return result(page);
}

const { child, ready } = await startLocal();
const browser = await chromium.launch({
  executablePath: browserPath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage();
  const apiResponses = [];
  page.on("response", async (response) => {
    if (response.url().startsWith(ready.api)) {
      apiResponses.push({ headers: await response.allHeaders(), body: await response.text().catch(() => "") });
    }
  });
  await page.goto(`${ready.spa}/`);
  await page.waitForSelector("body[data-ready=true]");

  // No token: the documented 401.
  let r = await click(page, "#call-identities");
  assert.equal(r.status, "401");
  assert.match(r.error, /^invalid_token:/);

  // A bad token: the documented 401 too.
  await page.fill("#token", "not-a-jwt");
  r = await click(page, "#call-github");
  assert.equal(r.status, "401");
  assert.match(r.error, /^invalid_token:/);

  // Demo login, then both calls go through, cross-origin.
  await click(page, "#login-demo");
  r = await click(page, "#call-identities");
  assert.equal(r.status, "200", r.body);
  assert.equal(JSON.parse(r.body).identities[0].connection, "github");
  r = await click(page, "#call-github");
  assert.equal(r.status, "200", r.body);
  assert.equal(JSON.parse(r.body).login, "octocat");
  assert.ok(apiResponses.some((x) => x.headers["access-control-allow-origin"] === ready.spa));

  // A user whose GitHub token was revoked: reconsent_required, naming the connection.
  await click(page, "#login-revoked");
  r = await click(page, "#call-github");
  assert.equal(r.status, "403");
  assert.match(r.error, /^reconsent_required: .*log in with github again/);

  // The IdP token appears nowhere: not in the page, not in any API response it received.
  const html = await page.content();
  assert.ok(!html.includes(ready.idp_token), "IdP token in the page");
  for (const response of apiResponses) {
    assert.ok(!response.body.includes(ready.idp_token), "IdP token in a response body");
    assert.ok(!JSON.stringify(response.headers).includes(ready.idp_token), "IdP token in headers");
  }

  // The same page from an origin not in ALLOWED_ORIGINS: the browser refuses the response.
  const other = await browser.newPage();
  await other.goto(`${ready.other_spa}/`);
  await other.waitForSelector("body[data-ready=true]");
  await click(other, "#login-demo");
  r = await click(other, "#call-github");
  assert.equal(r.status, "network error");
  assert.match(r.error, /^network_error:/);
  assert.ok(!(await other.content()).includes("octocat"));
  console.log("browser test passed: CORS allowed and refused, 401, reconsent_required, no IdP token in the page");
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await browser.close();
  child.kill();
}
process.exit(failed ? 1 : 0);
