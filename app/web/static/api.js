// The REST half of PROTOCOL.md: one method per route the page uses, each resolving to the JSON
// answer or rejecting with an ApiError that carries the server's error_type and message.
import { inTime } from "./wait.js";

/** A failed REST call: HTTP `status`, PROTOCOL.md's `errorType`, and words for a person. */
export class ApiError extends Error {
  constructor(status, errorType, message, retryAfterS = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errorType = errorType;
    /** Seconds the server asked to wait (a 429's Retry-After), or null. */
    this.retryAfterS = retryAfterS;
  }
}

/** A 429's text with the wait its Retry-After asked for: "… later. Try again in 30 s." */
export function withWait(message, retryAfterS) {
  if (!retryAfterS) return message;
  const sentence = /[.!?…]$/.test(message) ? message : `${message}.`;
  return `${sentence} Try again ${inTime(retryAfterS)}.`;
}

/** FastAPI's `detail` is text, or for a 422 a list of {loc, msg}: make it one readable line. */
function detailText(detail, fallback) {
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail)) {
    const parts = detail.map((item) => {
      const field = Array.isArray(item?.loc) ? item.loc.filter((p) => p !== "body").join(".") : "";
      const msg = typeof item?.msg === "string" ? item.msg : "is not valid";
      return field ? `${field}: ${msg}` : msg;
    });
    if (parts.length) return parts.join("; ");
  }
  return fallback;
}

const STATUS_ERROR_TYPES = {
  401: "unauthorized",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "validation_error",
  429: "rate_limited",
};

export class Api {
  /**
   * @param {() => string | null} getToken the bearer token to send, read at each call
   * @param {(error: ApiError) => void} onUnauthorized called for every 401 of a signed-in call
   */
  constructor(getToken, onUnauthorized) {
    this.getToken = getToken;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { json, form, body, auth = true, query } = {}) {
    const headers = { Accept: "application/json" };
    let payload = body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    } else if (form !== undefined) {
      payload = new URLSearchParams(form);
    }
    const token = auth ? this.getToken() : null;
    if (token) headers.Authorization = `Bearer ${token}`;
    const url = query ? `${path}?${new URLSearchParams(query)}` : path;

    let response;
    try {
      response = await fetch(url, { method, headers, body: payload });
    } catch {
      throw new ApiError(0, "network_error", "The server cannot be reached. Check the connection.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;

    let errorType = data?.error_type || STATUS_ERROR_TYPES[response.status] || "server_error";
    if (response.status >= 500 && !data?.error_type) errorType = "server_error";
    const detail = detailText(data?.detail, `The server answered ${response.status}.`);
    const wait = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    const retryAfterS = response.status === 429 && wait > 0 ? wait : null;
    const message = withWait(detail, retryAfterS);
    const error = new ApiError(response.status, errorType, message, retryAfterS);
    if (response.status === 401 && auth) this.onUnauthorized(error);
    throw error;
  }

  register(email, password) {
    return this.request("POST", "/api/auth/register", { json: { email, password }, auth: false });
  }

  /** OAuth2 password flow: form fields `username` (the email) and `password`. */
  signIn(email, password) {
    return this.request("POST", "/api/auth/token", {
      form: { username: email, password },
      auth: false,
    });
  }

  me() {
    return this.request("GET", "/api/auth/me");
  }

  listWorkspaces() {
    return this.request("GET", "/api/workspaces");
  }

  createWorkspace(name) {
    return this.request("POST", "/api/workspaces", { json: { name } });
  }

  getWorkspace(workspaceId) {
    return this.request("GET", `/api/workspaces/${encodeURIComponent(workspaceId)}`);
  }

  listSessions(workspaceId) {
    return this.request("GET", `/api/workspaces/${encodeURIComponent(workspaceId)}/sessions`);
  }

  createSession(workspaceId, title) {
    const json = title ? { title } : {};
    return this.request("POST", `/api/workspaces/${encodeURIComponent(workspaceId)}/sessions`, {
      json,
    });
  }

  getSession(sessionId) {
    return this.request("GET", `/api/sessions/${encodeURIComponent(sessionId)}`);
  }

  listMessages(sessionId) {
    return this.request("GET", `/api/sessions/${encodeURIComponent(sessionId)}/messages`, {
      query: { limit: "500" },
    });
  }

  listDocuments(workspaceId) {
    return this.request("GET", `/api/workspaces/${encodeURIComponent(workspaceId)}/documents`);
  }

  /** Multipart upload, field `file`; the browser sets the boundary itself. */
  uploadDocument(workspaceId, file) {
    const body = new FormData();
    body.append("file", file, file.name);
    return this.request("POST", `/api/workspaces/${encodeURIComponent(workspaceId)}/documents`, {
      body,
    });
  }
}
