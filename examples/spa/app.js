// Sample frontend of auth0-idp-proxy: signs in with Auth0's SPA SDK and calls GitHub through the
// API with the user's Auth0 access token. The page never sees a GitHub token.
//
// config.json: {"domain", "clientId", "audience", "api"} (+ "connection", default "github").
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

const connectionLabel = (name) => (name === "github" ? "GitHub" : name);

/** Plain words for what went wrong, and the one action that fixes it. */
function explain(error) {
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
  const connection = connectionLabel(error.body.connection || config.connection || "github");
  const relogin = (text) => ({
    label: text,
    run: () => auth0.loginWithRedirect({
      authorizationParams: { connection: error.body.connection || config.connection || "github" },
    }),
  });
  switch (code) {
    case "reconsent_required":
      return {
        code,
        text: `${connection} no longer accepts this app's access to your account (it expired or ` +
          `was revoked). Reconnect ${connection} to give it again.`,
        action: relogin(`Reconnect ${connection}`),
      };
    case "identity_not_linked":
      return {
        code,
        text: `Your account has no linked ${connection} identity. Sign in with ${connection} to link one.`,
        action: relogin(`Sign in with ${connection}`),
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
      return { code, text: `${connection} or Auth0 did not answer in time or properly. Try again in a moment.`, action: retry };
    case "credentials_unavailable":
      return { code, text: "The API cannot read its own credentials right now; its operator must check its secret.", action: retry };
    case "forbidden_path":
      return { code, text: "The API does not allow this call for this connection.", action: null };
    default:
      return {
        code: code || `http_${error.status}`,
        text: `${connection} answered ${error.status}: ${error.message}.`,
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

async function showAccount() {
  clearError();
  const user = await auth0.getUser();
  $("user-name").textContent = user.name || user.nickname || user.sub;
  $("user-sub").textContent = user.sub;
  if (user.picture) $("user-picture").src = user.picture;
  $("account").hidden = false;
  try {
    const { body: identities } = await api("/identities");
    $("identities").tBodies[0].replaceChildren(...identities.identities.map((identity) => {
      const row = document.createElement("tr");
      for (const value of [
        identity.connection,
        identity.user_id,
        identity.callable ? "possible" : "not possible",
        identity.renewable ? "yes" : "no",
      ]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }));
    const connection = config.connection || "github";
    const { body: profile } = await api(`/idp/${connection}/user`);
    $("avatar").src = profile.avatar_url;
    $("avatar").hidden = false;
    $("profile-name").textContent = profile.name || profile.login;
    $("profile-login").textContent = `@${profile.login}`;
    $("profile-login").href = profile.html_url;
    $("profile-repos").textContent = `· ${profile.public_repos} public repositories`;
    await showRepos(`/idp/${connection}/user/repos?per_page=30`, 1);
  } catch (error) {
    showError(error);
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

  const query = new URLSearchParams(window.location.search);
  if (query.has("state") && (query.has("code") || query.has("error"))) {
    try {
      await auth0.handleRedirectCallback();
    } catch (error) {
      showError({ error: error.error, message: error.error_description || error.message });
    }
    // The code and state are spent: keep them out of the address bar and history.
    window.history.replaceState({}, document.title, window.location.pathname);
  }
  const signedIn = await auth0.isAuthenticated();
  $("signed-out").hidden = signedIn;
  $("signed-in").hidden = !signedIn;
  if (signedIn) await showAccount();
  document.body.dataset.state = signedIn ? "signed-in" : "signed-out";
}

main().catch((error) => {
  showError(error);
  document.body.dataset.state = "failed";
});
