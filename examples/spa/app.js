// Sample frontend for auth0-idp-proxy. `config.json` says where the API is (and, in the local
// demo, where the stand-in tenant's demo login is). With a real tenant, get the access token
// from Auth0's SPA SDK (getTokenSilently) and put it where `token()` reads it.
"use strict";

const $ = (id) => document.getElementById(id);
let config = { api: "" };

function token() {
  return $("token").value.trim();
}

function show(status, body) {
  $("status").textContent = status;
  $("error").textContent = "";
  $("result").textContent = body === undefined ? "" : JSON.stringify(body, null, 2);
}

// The function's documented errors: {"error", "error_description"} (+ "connection").
function showError(status, body) {
  show(status, body);
  const messages = {
    invalid_token: "Your session is missing or invalid: sign in again.",
    insufficient_scope: "Your token lacks the scope this API requires.",
    reconsent_required: `Your ${body.connection} access has expired or was revoked: log in with ${body.connection} again.`,
    identity_not_linked: "Your account has no identity at that provider.",
    forbidden_path: "That call is not allowed.",
    rate_limited: "Too many requests: try again shortly.",
  };
  $("error").textContent = `${body.error}: ${messages[body.error] || body.error_description}`;
}

async function call(path) {
  const headers = {};
  if (token()) headers.authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(`${config.api}${path}`, { headers });
  } catch (e) {
    // A CORS refusal looks like a network failure to the page.
    show("network error", undefined);
    $("error").textContent = `network_error: the request was blocked or failed (${e.message})`;
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.ok) show(`${response.status}`, body);
  else showError(`${response.status}`, body);
}

async function demoLogin(sub) {
  const url = `${config.tenant}/demo/token?audience=${encodeURIComponent(config.audience)}&sub=${encodeURIComponent(sub)}`;
  const response = await fetch(url);
  $("token").value = (await response.json()).access_token;
  show("signed in", { sub });
}

async function main() {
  config = await (await fetch("config.json")).json();
  if (config.tenant) {
    $("demo-login").hidden = false;
    $("login-demo").onclick = () => demoLogin(config.demo_users[0]);
    $("login-revoked").onclick = () => demoLogin(config.demo_users[1]);
  }
  $("call-identities").onclick = () => call("/identities");
  $("call-github").onclick = () => call("/idp/github/user");
  document.body.dataset.ready = "true";
}

main();
