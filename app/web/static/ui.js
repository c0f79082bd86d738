// Rendering. Every piece of text that comes from a person, a document or the model goes into the
// page as a text node (textContent / createTextNode), never as HTML: an answer or a file name that
// contains markup shows that markup as characters and cannot run anything.

import { clampProgress } from "./status.js";

/**
 * Builds an element. `props`: className, testid, dataset, attrs (set with setAttribute), text
 * (textContent), on ({event: handler}), hidden, disabled. Children: nodes, or strings (text nodes).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { className, testid, dataset, attrs, text, on, hidden, disabled } = props;
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (dataset) for (const [key, value] of Object.entries(dataset)) node.dataset[key] = value;
  if (attrs) for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (on) for (const [event, handler] of Object.entries(on)) node.addEventListener(event, handler);
  if (hidden) node.hidden = true;
  if (disabled) node.disabled = true;
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** The element with that data-testid (the page's own, stable names). */
export function byTestId(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

// --- words for PROTOCOL.md's error types ---------------------------------------------------------

const ERROR_WORDS = {
  unauthorized: "You are not signed in.",
  validation_error: "That was not accepted.",
  not_found: "Not found: it may have been deleted, or it is not yours.",
  conflict: "That already exists.",
  rate_limited: "Too many requests: wait a moment and try again.",
  payload_too_large: "That file is too large.",
  unsupported_media_type: "That type of file cannot be read.",
  workspace_unavailable: "The workspace could not be prepared.",
  llm_auth: "The model provider refused the server's credentials.",
  llm_rate_limited: "The model provider is limiting requests: try again shortly.",
  llm_overloaded: "The model provider is overloaded: try again shortly.",
  llm_timeout: "The model took too long to answer.",
  llm_bad_request: "The model provider refused the request.",
  llm_unavailable: "The model provider cannot be reached.",
  worker_lost: "The server lost the answer while writing it.",
  server_error: "Something went wrong on the server.",
  network_error: "The server cannot be reached.",
  offline: "Not connected to the server.",
  no_ack: "The server did not answer in time.",
};

/** One sentence for a person: the error type in words, then the server's own message. */
export function describeError(errorType, message) {
  const words = ERROR_WORDS[errorType] || "Something went wrong.";
  if (!message || message === words) return words;
  const sentence = /[.!?…]$/.test(message) ? message : `${message}.`;
  return `${words} ${sentence}`;
}

/** "What failed." followed by why, in words: for the banner. */
export function failure(what, error) {
  return `${what} ${describeError(error?.errorType, error?.message)}`;
}

// --- the error banner ----------------------------------------------------------------------------

/** The banner at the top: shows the latest error and clears it after a while. */
export class Banner {
  constructor(element, clearAfterMs = 6_000) {
    this.element = element;
    this.clearAfterMs = clearAfterMs;
    this.timer = null;
    element.addEventListener("click", () => this.clear());
  }

  show(text) {
    this.element.textContent = text;
    this.element.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.clear(), this.clearAfterMs);
  }

  clear() {
    clearTimeout(this.timer);
    this.element.textContent = "";
    this.element.hidden = true;
  }
}

// --- connection badge ----------------------------------------------------------------------------

const BADGE_WORDS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export function renderBadge(element, state) {
  element.dataset.state = state;
  element.textContent = BADGE_WORDS[state] || state;
}

// --- workspaces and sessions ---------------------------------------------------------------------

export function statusPill(status, testid) {
  return h("span", { className: `pill pill-${status}`, testid, dataset: { status }, text: status });
}

export function renderWorkspaceList(list, workspaces, currentId, onPick) {
  list.replaceChildren(
    ...workspaces.map((ws) =>
      h(
        "li",
        {
          className: ws.id === currentId ? "item current" : "item",
          testid: "workspace-item",
          dataset: { workspaceId: ws.id, status: ws.status },
        },
        h(
          "button",
          {
            className: "item-button",
            attrs: { type: "button" },
            on: { click: () => onPick(ws.id) },
          },
          h("span", { className: "item-name", text: ws.name }),
          statusPill(ws.status, "workspace-item-status"),
        ),
      ),
    ),
  );
}

function sessionLabel(session) {
  if (session.title) return session.title;
  const when = new Date(session.created_at);
  return Number.isNaN(when.getTime()) ? "Conversation" : `Conversation of ${when.toLocaleString()}`;
}

export function renderSessionList(list, sessions, currentId, onPick) {
  if (!sessions.length) {
    list.replaceChildren(h("li", { className: "empty", text: "No conversations yet." }));
    return;
  }
  list.replaceChildren(
    ...sessions.map((session) =>
      h(
        "li",
        {
          className: session.id === currentId ? "item current" : "item",
          testid: "session-item",
          dataset: { sessionId: session.id },
        },
        h(
          "button",
          {
            className: "item-button",
            attrs: { type: "button" },
            on: { click: () => onPick(session.id) },
          },
          h("span", {
            className: "item-name",
            text: sessionLabel(session),
            attrs: { title: sessionLabel(session) },
          }),
        ),
      ),
    ),
  );
}

// --- documents -----------------------------------------------------------------------------------

function formatBytes(size) {
  if (!Number.isFinite(size)) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** A document row; `state` is {status, progress, message}. Update it with updateDocumentRow. */
export function documentRow(doc, state) {
  const bar = h("progress", {
    className: "progress",
    testid: "document-progress",
    attrs: { max: "1", value: "0" },
  });
  const row = h(
    "li",
    { className: "item document", testid: "document-row" },
    h(
      "div",
      { className: "document-head" },
      h("span", {
        className: "item-name",
        testid: "document-name",
        text: doc.filename,
        attrs: { title: doc.filename },
      }),
      h("span", { className: "muted", text: formatBytes(doc.size_bytes) }),
    ),
    bar,
    h(
      "div",
      { className: "document-foot" },
      h("span", { className: "document-status", testid: "document-status" }),
      h("span", { className: "document-message muted", testid: "document-message" }),
    ),
  );
  if (doc.id) row.dataset.documentId = doc.id;
  updateDocumentRow(row, state);
  return row;
}

export function updateDocumentRow(row, { status, progress, message }) {
  const value = status === "ready" ? 1 : clampProgress(progress);
  row.dataset.status = status;
  row.dataset.progress = String(value);
  const bar = byTestId("document-progress", row);
  // While uploading the bar is indeterminate: the server has not answered yet.
  if (status === "uploading") bar.removeAttribute("value");
  else bar.value = value;
  const words = status === "processing" ? `processing ${Math.round(value * 100)} %` : status;
  byTestId("document-status", row).textContent = words;
  byTestId("document-message", row).textContent = message || "";
}

// --- messages ------------------------------------------------------------------------------------

const STATUS_WORDS = {
  queued: "waiting to send",
  sending: "sending…",
  pending: "waiting for the model…",
  streaming: "answering…",
  complete: "",
  cancelled: "stopped",
  failed: "failed",
};

/**
 * A chat bubble. Returns {element, textNode}: the text node is what streaming appends to, so a
 * long answer grows without re-rendering what is already there.
 */
export function messageBubble({ role, status, text }) {
  const textNode = document.createTextNode(text || "");
  const element = h(
    "li",
    { className: `message ${role}`, testid: "message", dataset: { role, status } },
    h(
      "div",
      { className: "message-meta" },
      h("span", { className: "who", text: role === "user" ? "You" : "Assistant" }),
      h("span", { className: "message-status", testid: "message-status" }),
    ),
    h("div", { className: "message-text", testid: "message-text" }, textNode),
    h(
      "div",
      { className: "typing", testid: "typing-indicator", attrs: { "aria-label": "typing" } },
      h("span"),
      h("span"),
      h("span"),
    ),
    h("div", { className: "message-error", testid: "message-error", hidden: true }),
    h("ul", { className: "sources", testid: "sources", hidden: true }),
  );
  setBubbleStatus(element, status);
  return { element, textNode };
}

export function setBubbleStatus(element, status) {
  element.dataset.status = status;
  byTestId("message-status", element).textContent = STATUS_WORDS[status] ?? status;
  const typing = status === "pending" || status === "streaming";
  byTestId("typing-indicator", element).hidden = !typing;
}

export function setBubbleError(element, text) {
  const box = byTestId("message-error", element);
  box.textContent = text || "";
  box.hidden = !text;
}

/** Sources under an answer: file name, chunk index and score, with the passage as a tooltip. */
export function setBubbleSources(element, sources) {
  const list = byTestId("sources", element);
  const items = Array.isArray(sources) ? sources : [];
  list.replaceChildren(
    ...items.map((source) => {
      const score = Number(source.score);
      const item = h(
        "li",
        { className: "source", testid: "source-item" },
        h("span", { className: "source-file", text: String(source.filename ?? "document") }),
        h("span", { className: "muted", text: ` · chunk ${source.chunk_index}` }),
        h("span", {
          className: "muted",
          text: Number.isFinite(score) ? ` · score ${score.toFixed(2)}` : "",
        }),
      );
      if (typeof source.text === "string") item.title = source.text;
      return item;
    }),
  );
  list.hidden = items.length === 0;
}

// --- the outbox ----------------------------------------------------------------------------------

/** The messages typed while offline, oldest first, shown until they are sent. */
export function renderOutbox(panel, items) {
  const list = panel.querySelector("ol");
  list.replaceChildren(
    ...items.map((item) => h("li", { testid: "outbox-item", text: item.text })),
  );
  panel.hidden = items.length === 0;
}

/** Keeps a transcript scrolled to the bottom there as it grows; leaves it alone otherwise. */
export function stickToBottom(container, update) {
  const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 48;
  update();
  if (atBottom) container.scrollTop = container.scrollHeight;
}
