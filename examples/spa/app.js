// Sample frontend of auth0-idp-proxy: signs in with Auth0's SPA SDK and calls GitHub and Google
// through the API with the user's Auth0 access token. The page never sees an IdP token.
//
// config.json: {"domain", "clientId", "audience", "api", "useDpop"}. It shows GitHub and Google
// (through Token Vault) when /identities lists them. With `useDpop: true` the SDK binds the
// tokens it gets to a key it keeps in the browser (DPoP, RFC 9449), and every call to the API or
// the My Account API goes through the SDK's fetcher, which sends `Authorization: DPoP <token>` and
// a fresh `DPoP` proof for that request; without it, `Authorization: Bearer <token>`. A Token Vault account is connected and disconnected
// with Auth0's Connected Accounts (the My Account API at https://{domain}/me/): the SDK's
// connectAccountWithRedirect, which needs refresh tokens and a Multi-Resource Refresh Token
// policy for that audience (docs/token-vault.md).
// With a bundler, import from "@auth0/auth0-spa-js" instead; the local runner serves the SDK's
// ES module build from node_modules under this name.
import { createAuth0Client } from "./auth0-spa-js.production.esm.js";

const $ = (id) => document.getElementById(id);
let config;
let auth0;
/** The SDK's fetchers (`createFetcher`) for the API and for the My Account API. */
let apiFetcher;
let myAccountFetcher;

/** An error the function answered (`{"error", "error_description"}`) or GitHub passed through. */
class ApiError extends Error {
  constructor(status, body, headers) {
    super(body.error_description || body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** A refusal of Auth0's My Account API (RFC 7807 problem details: `{type, title, detail}`). */
class MyAccountError extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.name = "MyAccountApiError";
    this.status = status;
    this.detail = body.detail;
    this.title = body.title;
  }
}

/** `fetch`, with a network failure (a CORS refusal reaches the page as one) marked unreachable. */
async function reach(request) {
  try {
    return await fetch(request);
  } catch {
    const failure = new Error("unreachable");
    failure.unreachable = true;
    throw failure;
  }
}

/**
 * The SDK's fetcher: it gets the token with `token()` (the SDK's detailed answer, whose
 * `token_type` says `DPoP` or `Bearer`) and, with DPoP, signs a proof for each request. The
 * `dpopNonceId` turns the proofs on (the SDK adds none without one) and keeps that server's
 * `DPoP-Nonce` apart from the token endpoint's.
 */
const fetcher = (nonceId, token, fetchImpl) => auth0.createFetcher({
  ...(config.useDpop ? { dpopNonceId: nonceId } : {}),
  getAccessToken: token,
  ...(fetchImpl ? { fetch: fetchImpl } : {}),
});

/** Calls the API (`path` on it, or a full URL on it) with the Auth0 access token. */
async function api(pathOrUrl) {
  const url = pathOrUrl.startsWith("/") ? `${config.api}${pathOrUrl}` : pathOrUrl;
  if (!url.startsWith(`${config.api}/`)) {
    // The access token goes to the API and nowhere else.
    throw new Error(`refusing to send the access token outside the API: ${url}`);
  }
  // `Authorization: DPoP <token>` and a proof for this URL, or `Bearer <token>`.
  const response = await apiFetcher.fetchWithAuth(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body, response.headers);
  return { body, headers: response.headers };
}

/**
 * How this page shows each provider it knows: its name, what it calls, and for a Token Vault
 * connection the scopes it asks for when the user connects the account from the page.
 */
const PROVIDERS = {
  github: { label: "GitHub", show: showGitHub },
  "google-oauth2": { label: "Google", show: showGoogle, connectScopes: ["openid", "profile", "email"] },
};

const connectionLabel = (name) => PROVIDERS[name]?.label || name;

/** The refusals that the user fixes at the provider: the card offers it for that account only. */
const REFUSALS = new Set(["reconsent_required", "consent_required", "identity_not_linked"]);

/** A scope as a person reads it: Google's URL scopes by their last part (`drive.readonly`). */
const scopeName = (scope) => /^https?:\/\//.test(scope) ? scope.split("/").filter(Boolean).at(-1) : scope;

let user;

/**
 * Signs in again at `connection` as the same account, to give the API a fresh token there,
 * asking the provider for `scopes` (`connection_scope`) where an answer named them. `retry`
 * names the call to make again once back.
 */
function reconnect(connection, scopes = [], retry = null) {
  return auth0.loginWithRedirect({
    authorizationParams: {
      connection,
      ...(user?.email ? { login_hint: user.email } : {}),
      ...(scopes.length ? { connection_scope: scopes.join(" ") } : {}),
    },
    appState: { reconnect: connection, retry },
  });
}

/**
 * Connects the user's account at `connection` for Token Vault (Auth0's Connected Accounts,
 * through the SDK), asking the provider for `scopes`; `retry` names the call to make again once
 * back. Empty `scopes`: the page's own for that provider.
 */
function connect(connection, scopes = [], retry = null) {
  const asked = scopes.length ? scopes : PROVIDERS[connection]?.connectScopes || [];
  return auth0.connectAccountWithRedirect({
    connection,
    ...(asked.length ? { scopes: asked } : {}),
    appState: { connect: connection, retry },
  });
}

/** The My Account API's base: `https://{domain}/me/` (the SDK's own rule for a bare domain). */
const myAccountBase = () => `${/^https?:\/\//.test(config.domain) ? config.domain : `https://${config.domain}`}/me/`;

/** Calls the My Account API's connected-accounts `path` with a token for it. */
async function myAccount(path, init = {}) {
  const response = await myAccountFetcher.fetchWithAuth(`${myAccountBase()}v1/connected-accounts/${path}`, init);
  if (!response.ok) throw new MyAccountError(response.status, await response.json().catch(() => ({})));
  return response.status === 204 ? null : response.json();
}

/** Removes the user's connected accounts at `connection`: listed first, each deleted by id. */
async function disconnect(connection) {
  const ids = [];
  let from = null;
  do {
    const query = new URLSearchParams({ connection, ...(from ? { from } : {}) });
    const page = await myAccount(`accounts?${query}`);
    ids.push(...page.accounts.filter((a) => a.connection === connection).map((a) => a.id));
    from = page.next || null;
  } while (from);
  for (const id of ids) await myAccount(`accounts/${encodeURIComponent(id)}`, { method: "DELETE" });
  return ids.length;
}

/** `run`, with whatever it throws shown on the page. */
const guarded = (run) => () => Promise.resolve().then(run).catch((error) => {
  showError(error);
  if (error.unreachable) setState("failed", "The page could not reach the API: see the message above.");
});

/** Plain words for what went wrong, and the one action that fixes it; `call` names the call. */
function explain(error, connection, call = null) {
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
  if (error.name === "MyAccountApiError") {
    return {
      code: "my_account_api",
      text: `Auth0's My Account API refused the request: ${error.detail || error.title || error.message}. ` +
        "Its owner must activate it for this application (docs/token-vault.md).",
      action: call ? null : retry,
    };
  }
  if (!(error instanceof ApiError) && error.error && error.connection) {
    // Back from connecting an account that did not complete (access_denied: the user declined).
    const label = connectionLabel(error.connection);
    return {
      code: error.error,
      text: `Connecting ${label} did not complete: ${error.message}.`,
      action: { label: `Connect ${label}`, run: guarded(() => connect(error.connection)) },
    };
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
  // The function's consent answers say what to ask for and how: connect the account (Token
  // Vault) or log in again through the connection.
  const scopes = Array.isArray(error.body.scopes) ? error.body.scopes : [];
  const missing = Array.isArray(error.body.missing) ? error.body.missing : [];
  const byConnecting = error.body.action === "connect";
  switch (code) {
    case "reconsent_required":
      if (byConnecting) {
        return {
          code,
          text: `${label} is not connected to this app, so the API cannot call it for you. ` +
            `Connect ${label}${scopes.length ? `, allowing ${and(scopes.map(scopeName))}` : ""}.`,
          action: { label: `Connect ${label}`, run: guarded(() => connect(name, scopes, call)) },
          scopes,
        };
      }
      return {
        code,
        text: `${label} no longer accepts this app's access to your account (it expired or ` +
          `was revoked). Reconnect ${label} to give it again.`,
        action: { label: `Reconnect ${label}`, run: guarded(() => reconnect(name, scopes, call)) },
        scopes,
      };
    case "consent_required": {
      const lacking = and((missing.length ? missing : scopes).map(scopeName));
      return {
        code,
        text: `${label} has not allowed this app ${lacking}, which this call needs. ` +
          (byConnecting
            ? `Connect ${label} again to allow it: ${label} will ask you for ${and(scopes.map(scopeName))}.`
            : `Sign in with ${label} again to allow it: ${label} will ask you for ${and(scopes.map(scopeName))}.`),
        action: {
          label: `Allow ${lacking} at ${label}`,
          run: guarded(() => byConnecting ? connect(name, scopes, call) : reconnect(name, scopes, call)),
        },
        scopes,
      };
    }
    case "identity_not_linked":
      return {
        code,
        text: `Your account has no linked ${label} identity. Sign in with ${label} to link one.`,
        action: { label: `Sign in with ${label}`, run: guarded(() => reconnect(name)) },
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
  $("drive-files").replaceChildren();
  $("drive-note").textContent = "";
  showProblem($("drive"), null);
  return info.email || info.name;
}

/**
 * A call's problem in `container` (its `.idp-problem`): the sentence and the one action, or
 * nothing (`explained` null). Returns whether the user can fix it at the provider.
 */
function showProblem(container, explained) {
  const problem = container.querySelector(":scope > .idp-problem");
  problem.hidden = !explained;
  if (!explained) {
    delete container.dataset.error;
    return false;
  }
  const { code, text, action, scopes } = explained;
  container.dataset.error = code;
  problem.querySelector(".idp-problem-text").textContent = text;
  const button = problem.querySelector(".idp-action");
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.onclick = action.run;
  }
  // The scopes the answer names, for the provider's consent: exactly what the button asks for.
  const list = problem.querySelector(".idp-scopes");
  if (list) {
    list.hidden = !scopes?.length;
    list.replaceChildren(...(scopes || []).map((scope) => {
      const item = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = scope;
      item.append(code);
      return item;
    }));
  }
  return REFUSALS.has(code);
}

/**
 * Google Drive's first files, a call whose allow rule needs a Drive scope: where the user has
 * not granted one, the API answers `consent_required` naming it, and the page offers to ask.
 */
async function listDrive() {
  const drive = $("drive");
  drive.dataset.state = "loading";
  $("drive-list").disabled = true;
  showProblem(drive, null);
  try {
    const { body } = await api("/idp/google-oauth2/drive/v3/files?pageSize=10");
    const files = Array.isArray(body.files) ? body.files : [];
    $("drive-files").replaceChildren(...files.map((file) => {
      const item = document.createElement("li");
      item.textContent = file.name || file.id;
      return item;
    }));
    $("drive-note").textContent = files.length
      ? `Drive answered through the API: ${files.length} file${files.length > 1 ? "s" : ""}.`
      : "Drive answered through the API: no files to show.";
    drive.dataset.state = "ready";
  } catch (error) {
    $("drive-files").replaceChildren();
    $("drive-note").textContent = "";
    const refused = showProblem(drive, explain(error, "google-oauth2", "drive"));
    drive.dataset.state = refused ? "refused" : "failed";
  } finally {
    $("drive-list").disabled = false;
  }
}

/** The calls a page can make again once back from the provider, by name. */
const RETRIES = { drive: listDrive };

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

/**
 * The card's line on the user's Token Vault account there (`vault`: `{connected, scopes}` from
 * /identities, or what the page itself just did), and its Connect / Disconnect buttons.
 */
function showVaultState(connection, vault) {
  const card = $(`idp-${connection}`);
  const line = card.querySelector(".vault-state");
  const label = connectionLabel(connection);
  const connectButton = card.querySelector(".vault-connect");
  const disconnectButton = card.querySelector(".vault-disconnect");
  if (!line) return;
  line.hidden = !vault;
  connectButton.hidden = !vault || vault.connected;
  disconnectButton.hidden = !vault || !vault.connected;
  if (!vault) return;
  card.dataset.connected = String(vault.connected);
  if (!vault.connected) {
    line.textContent = `${label} is not connected to your account here.`;
  } else if (Array.isArray(vault.scopes)) {
    line.textContent = vault.scopes.length
      ? `Connected (Auth0 Token Vault). Allowed: ${vault.scopes.map(scopeName).join(", ")}.`
      : "Connected (Auth0 Token Vault), with no scope granted.";
  } else {
    line.textContent = "Connected (Auth0 Token Vault).";
  }
  connectButton.textContent = `Connect ${label}`;
  connectButton.onclick = guarded(() => connect(connection));
  disconnectButton.textContent = `Disconnect ${label}`;
  disconnectButton.onclick = guarded(async () => {
    disconnectButton.disabled = true;
    setState("loading", `Disconnecting ${label} (Auth0's My Account API)…`);
    try {
      await disconnect(connection);
    } finally {
      disconnectButton.disabled = false;
    }
    await showAccount({ disconnected: connection });
  });
}

/** Loads one provider's card: its content when the API answers, else what went wrong there. */
async function loadProvider(connection) {
  const card = $(`idp-${connection}`);
  const content = card.querySelector(".idp-content");
  card.hidden = false;
  card.dataset.state = "loading";
  showProblem(card, null);
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
    const explained = explain(error, connection);
    const refused = showProblem(card, explained);
    card.dataset.state = refused ? "refused" : "failed";
    cell(connection, 3).textContent = refused
      ? (error.body?.action === "connect" ? "refused: connect" : "refused: reconnect")
      : `failed (${explained.code})`;
    if (error.unreachable) throw error;
    return { connection, ok: false, refused, code: explained.code };
  }
}

/** A Token Vault connection's card when the account is not connected: no call, an offer. */
function offerConnection(connection) {
  const card = $(`idp-${connection}`);
  card.hidden = false;
  card.dataset.state = "not-connected";
  card.querySelector(".idp-content").hidden = true;
  showProblem(card, null);
  cell(connection, 3).textContent = "not connected";
  return { connection, ok: false, unconnected: true };
}

/**
 * Shows the signed-in page. `after` says what the page has just done, which /identities (a
 * profile read up to 30 s old) may not show yet: `connected` (the My Account API's connected
 * account), `disconnected` (a connection), `reconnected` (a login through a connection),
 * `retry` (a call to make again), `keepError` (leave the message above the cards).
 */
async function showAccount(after = {}) {
  if (!after.keepError) clearError();
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
    // Each Token Vault connection's state for the user; what the page just did wins.
    const vault = new Map((body.token_vault || []).map((state) => [state.connection, state]));
    if (after.connected) {
      const { connection, scopes } = after.connected;
      vault.set(connection, { connection, connected: true, ...(Array.isArray(scopes) ? { scopes } : {}) });
    }
    if (after.disconnected) vault.set(after.disconnected, { connection: after.disconnected, connected: false });
    $("identities").tBodies[0].replaceChildren(...rows.values());
    const shown = [...rows.keys()].filter((connection) => PROVIDERS[connection] &&
      rows.get(connection).cells[2].textContent !== "not configured");
    for (const connection of rows.keys()) {
      if (!shown.includes(connection)) cell(connection, 3).textContent = "not called by this page";
    }
    for (const connection of shown) showVaultState(connection, vault.get(connection));
    // A connection not connected is not called, except right after the page disconnected it:
    // that next call shows what the API answers now.
    const results = await Promise.all(shown.map((connection) =>
      vault.get(connection)?.connected === false && after.disconnected !== connection
        ? offerConnection(connection)
        : loadProvider(connection)));
    const labels = (filter) => results.filter(filter).map((r) => connectionLabel(r.connection));
    const refused = labels((r) => r.refused);
    const failed = labels((r) => !r.ok && !r.refused && !r.unconnected);
    const unconnected = labels((r) => r.unconnected);
    const answered = labels((r) => r.ok);
    const gone = after.disconnected && results.find((r) => r.connection === after.disconnected);
    if (gone) {
      const label = connectionLabel(gone.connection);
      if (gone.ok) {
        // The API keeps an exchanged token until shortly before it expires: say so, and offer
        // to look again.
        showProblem($(`idp-${gone.connection}`), {
          code: "token_still_held",
          text: `Auth0 no longer holds your ${label} account, but the API answered with a ${label} ` +
            "token it obtained before the disconnection; that token stops being used when it expires.",
          action: { label: "Check again", run: guarded(() => showAccount({ disconnected: gone.connection })) },
        });
        cell(gone.connection, 3).textContent = "answers (token held from before)";
      }
      setState("disconnected", gone.ok
        ? `${label} disconnected at Auth0, but the API still answered with a token it obtained before; it stops when that token expires.`
        : `${label} disconnected: the API answered ${gone.code || "an error"} for it, so nothing can call ${label} for you until you connect it again.`);
    } else if (refused.length) {
      setState("refused", `${and(refused)} refused this app's access to your account: reconnect ${refused.length > 1 ? "them" : "it"} below.`);
    } else if (failed.length) {
      setState("failed", `${and(failed)} could not be loaded: see below.`);
    } else if (after.reconnected && shown.includes(after.reconnected)) {
      setState("reconnected", `${connectionLabel(after.reconnected)} reconnected: it answers through the API again.`);
    } else if (after.connected && answered.includes(connectionLabel(after.connected.connection))) {
      setState("connected", `${connectionLabel(after.connected.connection)} connected: it answers through the API.`);
    } else if (shown.length) {
      const parts = [];
      if (answered.length) parts.push(`${and(answered)} answered through the API.`);
      if (unconnected.length) {
        parts.push(`${and(unconnected)} ${unconnected.length > 1 ? "are" : "is"} not connected: connect ${unconnected.length > 1 ? "them" : "it"} below.`);
      }
      setState("ready", `Signed in: ${parts.join(" ")}`);
    } else {
      setState("ready", "Signed in: none of your linked connections is one this page shows.");
    }
    // Back from the provider for a call that needed it: that call again.
    const retry = RETRIES[after.retry];
    if (retry && results.some((r) => r.ok)) await retry();
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
    // Connected Accounts: a refresh token (kept in the SDK's worker, in memory) gets the My
    // Account API's token (Multi-Resource Refresh Token); after a reload, a silent sign-in
    // through the tenant's session gets a new one.
    useRefreshTokens: true,
    useRefreshTokensFallback: true,
    useMrrt: true,
    // DPoP (RFC 9449): tokens bound to a key the SDK keeps in the browser (non-extractable, in
    // IndexedDB), useless to anyone who steals them. Off when config.json says so, for an API
    // deployed with DPOP=off.
    useDpop: config.useDpop === true,
  });
  // The API's own audience: the SDK's default token hook would ask for none (`audience:
  // undefined` replaces the client's), so the token is asked for here.
  apiFetcher = fetcher("auth0-idp-proxy", () => auth0.getTokenSilently({ detailedResponse: true }), reach);
  // One token for both My Account calls: a refresh token exchange for the /me/ audience (MRRT).
  // The nonce id is the one the SDK's own My Account client (connectAccountWithRedirect) uses.
  myAccountFetcher = fetcher("__auth0_my_account_api__", () => auth0.getTokenSilently({
    authorizationParams: { audience: myAccountBase(), scope: "read:me:connected_accounts delete:me:connected_accounts" },
    detailedResponse: true,
  }));
  $("sign-in").onclick = () => auth0.loginWithRedirect();
  $("sign-out").onclick = () => auth0.logout({ logoutParams: { returnTo: window.location.origin } });
  $("drive-list").onclick = () => listDrive();
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

  const after = {};
  const query = new URLSearchParams(window.location.search);
  if (query.has("state") && (query.has("code") || query.has("connect_code") || query.has("error"))) {
    try {
      // A login's result (`code`) or a connected account's (`connect_code`, completed with the
      // My Account API by the SDK): the SDK tells them apart by its transaction.
      const result = await auth0.handleRedirectCallback();
      if (result.response_type === "connect_code") {
        after.connected = { connection: result.connection, scopes: result.scopes };
      } else {
        after.reconnected = result.appState?.reconnect || null;
      }
      after.retry = result.appState?.retry || null;
    } catch (error) {
      showError({ error: error.error, message: error.error_description || error.message, connection: error.connection });
    }
    // The code and state are spent: keep them out of the address bar and history.
    window.history.replaceState({}, document.title, window.location.pathname);
  }
  const signedIn = await auth0.isAuthenticated();
  $("signed-out").hidden = signedIn;
  $("signed-in").hidden = !signedIn;
  if (signedIn) {
    // A sign-in or connection that did not complete stays said above the cards.
    await showAccount({ ...after, keepError: !$("error").hidden });
  } else {
    setState("signed-out", "Signed out.");
  }
}

main().catch((error) => {
  showError(error);
  setState("failed", "The page could not start: see the message above.");
});
