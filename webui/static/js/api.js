// HTTP helpers for the pages: JSON in and out, problem+json errors as ApiError, who is signed in.

/** An API failure carrying the server's problem+json fields, so pages can show `detail` to the user. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `request failed with HTTP ${status}`);
    this.status = status;
    this.type = problem.type || "";
    this.title = problem.title || "";
    this.detail = this.message;
    this.field = problem.field || "";
    this.problem = problem; // the whole body: some problems name more facts (min_next_cents, floor_cents, ...)
  }

  /** The problem's slug: "bid-too-low" for type "livecore:bid-too-low". */
  get slug() {
    return this.type.replace(/^livecore:/, "");
  }
}

/**
 * fetch() a same-origin API path; resolves to the parsed JSON body (or null for 204), rejects with ApiError.
 * `body` is sent as JSON, `form` (a FormData, for uploads) as multipart/form-data.
 */
export async function api(path, { method = "GET", body, form } = {}) {
  const init = { method, headers: { Accept: "application/json, application/problem+json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (form !== undefined) {
    init.body = form; // the browser sets the multipart Content-Type with its boundary
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { detail: "Cannot reach the server. Check your connection and try again." });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && typeof data === "object" ? data : {});
  }
  return data;
}

/** Whether the page was rendered for nobody (the layout says so): then there is no account to ask the server for. */
export function signedOut() {
  return document.body.dataset.signedIn === "false";
}

/** The logged-in account, or null when nobody is logged in (401, or the page was rendered for nobody). */
export async function currentUser() {
  if (signedOut()) return null; // no request the server would refuse
  try {
    return await api("/api/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/**
 * A local path to go to after logging in. Only same-origin paths are accepted so that a crafted link
 * cannot turn the login page into an open redirect.
 */
export function safeNext(raw) {
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\")) return "/";
  try {
    const url = new URL(raw, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}
