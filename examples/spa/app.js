// Sample frontend of auth0-idp-proxy: signs in with Auth0's SPA SDK and calls GitHub and Google
// through the API with the user's Auth0 access token. The page never sees an IdP token.
//
// config.json: {"domain", "clientId", "audience", "api"}. It shows GitHub and Google (through
// Token Vault) when /identities lists them.
// With a bundler, import from "@auth0/auth0-spa-js" instead; the local runner serves the SDK's
// ES module build from node_modules under this name.
import { createAuth0Client } from "./auth0-spa-js.production.esm.js";

const $ = (id) => document.getElementById(id);
let config;
let auth0;

/** An error the function answered (`{"error", "error_description"}`) or GitHub passed through. */
class ApiError extends Error {
  constructor(status, body, headers) {
    super(body.error_description || body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** Calls the API (`path` on it, or a full URL on it) with the Auth0 access token. */
async function api(pathOrUrl) {
  const url = pathOrUrl.startsWith("/") ? `${config.api}${pathOrUrl}` : pathOrUrl;
  if (!url.startsWith(`${config.api}/`)) {
    // The access token goes to the API and nowhere else.
    throw new Error(`refusing to send the access token outside the API: ${url}`);
  }
  const token = await auth0.getTokenSilently();
  let response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  } catch {
    // A CORS refusal reaches the page as a bare network failure.
    const failure = new Error("unreachable");
    failure.unreachable = true;
    throw failure;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body, response.headers);
  return { body, headers: response.headers };
}

/** How this page shows each provider it knows: its name and what it calls. */
const PROVIDERS = {
  github: { label: "GitHub", show: showGitHub },
  "google-oauth2": { label: "Google", show: showGoogle },
};

const connectionLabel = (name) => PROVIDERS[name]?.label || name;

/** The refusals that one provider's sign-in fixes: the card offers it for that account only. */
const REFUSALS = new Set(["reconsent_required", "identity_not_linked"]);

let user;

/** Signs in again at `connection` as the same account, to give the API a fresh token there. */
function reconnect(connection) {
  return auth0.loginWithRedirect({
    authorizationParams: { connection, ...(user?.email ? { login_hint: user.email } : {}) },
    appState: { reconnect: connection },
  });
}

/** Plain words for what went wrong, and the one action that fixes it. */
function explain(error, connection) {
  const signIn = { label: "Sign in again", run: () => auth0.loginWithRedirect() };
  const retry = { label: "Try again", run: () => showAccount() };
  if (error.unreachable) {
    return {
      code: "unreachable",
      text: `The API at ${config.api} cannot be reached from this page. Check that it is running ` +
        `and that its ALLOWED_ORIGINS includes ${window.location.origin}.`,
      action: retry,
    };
  }
  if (error.error === "login_required" || error.error === "missing_refresh_token") {
    return { code: error.error, text: "Your session has ended.", action: signIn };
  }
  if (!(error instanceof ApiError) && error.error) {
    // Auth0 refused the sign-in (access_denied, a consent declined…): it says why.
    return { code: error.error, text: `Sign-in did not complete: ${error.message}.`, action: signIn };
  }
  if (!(error instanceof ApiError)) {
    return { code: "error", text: `Something went wrong: ${error.message}. Reload the page to try again.`, action: null };
  }
  const code = error.body.error;
  const name = error.body.connection || connection;
  const label = connectionLabel(name);
  switch (code) {
    case "reconsent_required":
      return {
        code,
        text: `${label} no longer accepts this app's access to your account (it expired or ` +
          `was revoked). Reconnect ${label} to give it again.`,
        action: { label: `Reconnect ${label}`, run: () => reconnect(name) },
      };
    case "identity_not_linked":
      return {
        code,
        text: `Your account has no linked ${label} identity. Sign in with ${label} to link one.`,
        action: { label: `Sign in with ${label}`, run: () => reconnect(name) },
      };
    case "invalid_token":
      return { code, text: "The API did not accept your sign-in (it may have expired).", action: signIn };
    case "insufficient_scope":
      return {
        code,
        text: "Your sign-in lacks a permission the API requires. Ask its owner to grant it, then sign in again.",
        action: signIn,
      };
    case "rate_limited": {
      const wait = error.headers.get("retry-after");
      return { code, text: `Too many requests right now. Try again${wait ? ` in ${wait} s` : " shortly"}.`, action: retry };
    }
    case "upstream_error":
    case "upstream_timeout":
      return { code, text: `${label} or Auth0 did not answer in time or properly. Try again in a moment.`, action: retry };
    case "credentials_unavailable":
      return { code, text: "The API cannot read its own credentials right now; its operator must check its secret.", action: retry };
    case "forbidden_path":
      return { code, text: `The API does not allow this call for ${label}.`, action: null };
    default:
      return {
        code: code || `http_${error.status}`,
        text: `${label} answered ${error.status}: ${error.message}.`,
        action: retry,
      };
  }
}

function showError(error) {
  const { code, text, action } = explain(error);
  $("error").hidden = false;
  $("error").dataset.error = code;
  $("error-text").textContent = text;
  $("error-action").hidden = !action;
  if (action) {
    $("error-action").textContent = action.label;
    $("error-action").onclick = action.run;
  }
}

function clearError() {
  $("error").hidden = true;
  delete $("error").dataset.error;
}

/** The page's one state (`body[data-state]`) and the one sentence that says it. */
function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

/** Names joined as a sentence says them: "GitHub", "GitHub and Google", "A, B and C". */
const and = (names) => names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;

/** The `rel="next"` URL of a `Link` header, if any. */
function nextLink(header) {
  for (const part of (header || "").split(",")) {
    const match = part.match(/<([^>]*)>\s*;.*\brel="?next"?/);
    if (match) return match[1];
  }
  return null;
}

let reposPage = 0;
let nextReposUrl = null;

async function showRepos(pathOrUrl, page) {
  const { body, headers } = await api(pathOrUrl);
  reposPage = page;
  $("repos").replaceChildren(...body.map((repo) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = repo.html_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = repo.full_name;
    const lang = document.createElement("span");
    lang.className = "lang";
    lang.textContent = repo.language ? ` ${repo.language}` : "";
    item.append(link, lang);
    return item;
  }));
  $("repos").start = (page - 1) * 30 + 1;
  $("repos-page").textContent = `page ${page}`;
  const next = nextLink(headers.get("link"));
  nextReposUrl = next && next.startsWith(`${config.api}/`) ? next : null;
  $("next-page").hidden = !nextReposUrl;
  $("repos-note").textContent = next && !nextReposUrl
    ? "There are more repositories, but the API sent a next-page link outside itself, which this " +
      "page does not follow. Update the API: it rewrites GitHub's links to its own URL."
    : body.length === 0 ? "No repositories." : "";
}

/** GitHub's profile and first page of repositories; what the table shows as the account. */
async function showGitHub() {
  const { body: profile } = await api("/idp/github/user");
  $("avatar").src = profile.avatar_url;
  $("profile-name").textContent = profile.name || profile.login;
  $("profile-login").textContent = `@${profile.login}`;
  $("profile-login").href = profile.html_url;
  $("profile-repos").textContent = `· ${profile.public_repos} public repositories`;
  await showRepos("/idp/github/user/repos?per_page=30", 1);
  return `@${profile.login}`;
}

/** Google's OpenID Connect userinfo, served through Token Vault. */
async function showGoogle() {
  const { body: info } = await api("/idp/google-oauth2/oauth2/v3/userinfo");
  $("google-name").textContent = info.name || info.email;
  $("google-email").textContent = info.email && info.name ? info.email : "";
  return info.email || info.name;
}

/** One row of the connections table; `status` is filled in when the provider answers. */
function connectionRow(connection, account, source) {
  const row = document.createElement("tr");
  row.dataset.connection = connection;
  const labels = ["connection", "account", "token from", "status"];
  const sources = { identities: "Management API", token_vault: "Token Vault" };
  for (const [i, value] of [connection, account, sources[source] || "not configured", ""].entries()) {
    const cell = document.createElement("td");
    cell.dataset.label = labels[i];
    cell.textContent = value;
    row.append(cell);
  }
  return row;
}

const cell = (connection, index) =>
  $("identities").querySelector(`tr[data-connection="${connection}"]`).cells[index];

/** Loads one provider's card: its content when the API answers, else what went wrong there. */
async function loadProvider(connection) {
  const card = $(`idp-${connection}`);
  const problem = card.querySelector(".idp-problem");
  const content = card.querySelector(".idp-content");
  card.hidden = false;
  card.dataset.state = "loading";
  problem.hidden = true;
  content.hidden = true;
  cell(connection, 3).textContent = "loading…";
  try {
    const account = await PROVIDERS[connection].show();
    card.dataset.state = "ready";
    content.hidden = false;
    cell(connection, 3).textContent = "answers";
    if (cell(connection, 1).textContent === "—") cell(connection, 1).textContent = account;
    return { connection, ok: true };
  } catch (error) {
    const { code, text, action } = explain(error, connection);
    const refused = REFUSALS.has(code);
    card.dataset.state = refused ? "refused" : "failed";
    card.dataset.error = code;
    problem.hidden = false;
    problem.querySelector(".idp-problem-text").textContent = text;
    const button = problem.querySelector(".idp-action");
    button.hidden = !action;
    if (action) {
      button.textContent = action.label;
      button.onclick = action.run;
    }
    cell(connection, 3).textContent = refused ? "refused: reconnect" : `failed (${code})`;
    if (error.unreachable) throw error;
    return { connection, ok: false, refused };
  }
}

async function showAccount(reconnected) {
  clearError();
  user = await auth0.getUser();
  $("user-name").textContent = user.name || user.nickname || user.sub;
  $("user-sub").textContent = user.sub;
  $("user").title = `${$("user-name").textContent} ${user.sub}`;
  if (user.picture) $("user-picture").src = user.picture;
  $("account").hidden = false;
  for (const card of document.querySelectorAll(".idp")) card.hidden = true;
  setState("loading", "Loading your linked accounts through the API…");
  try {
    const { body } = await api("/identities");
    // Every connection the user can call: their configured identities, and every Token Vault
    // connection (whose account Auth0 keeps apart from the identities).
    const rows = new Map();
    for (const identity of body.identities) {
      rows.set(identity.connection, connectionRow(identity.connection, identity.user_id, identity.token_source));
    }
    for (const connection of body.token_vault_connections || []) {
      if (!rows.has(connection)) rows.set(connection, connectionRow(connection, "—", "token_vault"));
    }
    $("identities").tBodies[0].replaceChildren(...rows.values());
    const shown = [...rows.keys()].filter((connection) => PROVIDERS[connection] &&
      rows.get(connection).cells[2].textContent !== "not configured");
    for (const connection of rows.keys()) {
      if (!shown.includes(connection)) cell(connection, 3).textContent = "not called by this page";
    }
    const results = await Promise.all(shown.map(loadProvider));
    const labels = (filter) => results.filter(filter).map((r) => connectionLabel(r.connection));
    const refused = labels((r) => r.refused);
    const failed = labels((r) => !r.ok && !r.refused);
    if (refused.length) {
      setState("refused", `${and(refused)} refused this app's access to your account: reconnect ${refused.length > 1 ? "them" : "it"} below.`);
    } else if (failed.length) {
      setState("failed", `${and(failed)} could not be loaded: see below.`);
    } else if (reconnected && shown.includes(reconnected)) {
      setState("reconnected", `${connectionLabel(reconnected)} reconnected: it answers through the API again.`);
    } else if (shown.length) {
      setState("ready", `Signed in: ${and(labels((r) => r.ok))} answered through the API.`);
    } else {
      setState("ready", "Signed in: none of your linked connections is one this page shows.");
    }
  } catch (error) {
    showError(error);
    setState("failed", "The page could not load your accounts: see the message above.");
  }
}

async function main() {
  config = await (await fetch("config.json")).json();
  auth0 = await createAuth0Client({
    domain: config.domain,
    clientId: config.clientId,
    authorizationParams: { audience: config.audience, redirect_uri: window.location.origin },
  });
  $("sign-in").onclick = () => auth0.loginWithRedirect();
  $("sign-out").onclick = () => auth0.logout({ logoutParams: { returnTo: window.location.origin } });
  $("next-page").onclick = async () => {
    $("next-page").disabled = true;
    try {
      await showRepos(nextReposUrl, reposPage + 1);
    } catch (error) {
      showError(error);
    } finally {
      $("next-page").disabled = false;
    }
  };

  let reconnected = null;
  const query = new URLSearchParams(window.location.search);
  if (query.has("state") && (query.has("code") || query.has("error"))) {
    try {
      const { appState } = await auth0.handleRedirectCallback();
      reconnected = appState?.reconnect || null;
    } catch (error) {
      showError({ error: error.error, message: error.error_description || error.message });
    }
    // The code and state are spent: keep them out of the address bar and history.
    window.history.replaceState({}, document.title, window.location.pathname);
  }
  const signedIn = await auth0.isAuthenticated();
  $("signed-out").hidden = signedIn;
  $("signed-in").hidden = !signedIn;
  if (signedIn) {
    await showAccount(reconnected);
  } else {
    setState("signed-out", "Signed out.");
  }
}

main().catch((error) => {
  showError(error);
  setState("failed", "The page could not start: see the message above.");
});
