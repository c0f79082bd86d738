// The conversation on screen: history, sending (with the offline queue), streaming answers by the
// chunk rules, Stop, and catching up after a reconnect.
//
// An answer belongs to its session on the server, not to this page's connection: after a drop the
// page asks for what it missed (`resume`) instead of asking again, and a message whose send may
// or may not have arrived is sent again with the same client_message_id, which the server answers
// with the first send's ack rather than a second answer.

import { StreamText, codePointLength } from "./chunks.js";
import { TokenRate } from "./rate.js";
import * as ui from "./ui.js";

const IN_PROGRESS = new Set(["pending", "streaming"]);
const MAX_MESSAGE_CHARS = 32_000;
/** A send that got no ack while the connection stayed up is tried again after this long. */
const RETRY_UNACKED_MS = 2_000;

/** A fresh client_message_id (crypto.randomUUID exists only in secure contexts: a fallback). */
export function newClientMessageId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  const part = (from, to) => hex.slice(from, to);
  return `${part(0, 8)}-${part(8, 12)}-${part(12, 16)}-${part(16, 20)}-${part(20, 32)}`;
}

export class Chat {
  /**
   * @param {object} options
   * @param {import("./socket.js").Realtime} options.realtime
   * @param {import("./api.js").Api} options.api
   * @param {{transcript: HTMLElement, outbox: HTMLElement, stop: HTMLButtonElement,
   *          send: HTMLButtonElement, input: HTMLTextAreaElement, rate: HTMLElement}}
   *        options.elements
   * @param {import("./ui.js").Banner} options.banner
   * @param {(sessionId: string) => void} options.onSessionStarted a draft got its session
   */
  constructor({ realtime, api, elements, banner, onSessionStarted }) {
    this.realtime = realtime;
    this.api = api;
    this.el = elements;
    this.banner = banner;
    this.onSessionStarted = onSessionStarted;
    this.outbox = [];
    this.flushing = false;
    this.retryTimer = null;
    this.reset();
  }

  /** Forgets everything (sign-out). */
  reset() {
    this.workspaceId = null;
    this.sessionId = null;
    this.draftId = null;
    this.viewSeq = (this.viewSeq ?? 0) + 1;
    this.loading = false;
    this.messages = new Map();
    this.outbox = [];
    clearTimeout(this.retryTimer);
    this.el.transcript.replaceChildren();
    this.el.rate.textContent = "";
    ui.renderOutbox(this.el.outbox, []);
    this.refreshControls();
  }

  /** Binds the server's chat events (once per Realtime connection object). */
  bind(realtime) {
    this.realtime = realtime;
    realtime.on("chat_chunk", (event) => this.onChunk(event));
    realtime.on("chat_complete", (event) =>
      this.onFinal(event, "complete", event.full_response),
    );
    realtime.on("chat_cancelled", (event) =>
      this.onFinal(event, "cancelled", event.partial_response),
    );
    realtime.on("chat_error", (event) => this.onChatError(event));
  }

  // --- the view ----------------------------------------------------------------------------------

  /** Shows a session of a workspace (`sessionId` null: a new conversation, made on first send). */
  async open(workspaceId, sessionId) {
    const seq = ++this.viewSeq;
    const previous = this.sessionId;
    this.workspaceId = workspaceId;
    this.sessionId = sessionId;
    this.draftId = sessionId ? null : newClientMessageId();
    this.messages = new Map();
    this.el.transcript.replaceChildren();
    this.el.rate.textContent = "";
    if (previous && previous !== sessionId && this.realtime?.connected) {
      this.realtime.request("leave_session", { session_id: previous }).catch(() => {});
    }

    if (sessionId) {
      this.loading = true;
      this.refreshControls();
      let history;
      try {
        history = await this.api.listMessages(sessionId);
      } catch (error) {
        if (seq !== this.viewSeq) return;
        this.loading = false;
        this.refreshControls();
        this.banner.show(ui.failure("Could not load the conversation.", error));
        return;
      }
      if (seq !== this.viewSeq) return;
      for (const message of history) this.addFromHistory(message);
      this.loading = false;
    }
    for (const item of this.outbox) {
      if (!this.inView(item)) continue;
      item.record = this.addUserBubble(item.text, item.state, item.clientMessageId);
    }
    this.el.transcript.scrollTop = this.el.transcript.scrollHeight;
    this.refreshControls();
    if (this.realtime?.connected) await this.attach();
  }

  inView(item) {
    if (item.workspaceId !== this.workspaceId) return false;
    if (item.sessionId) return item.sessionId === this.sessionId;
    return this.sessionId === null && item.draftId === this.draftId;
  }

  addFromHistory(message) {
    if (message.role === "user") {
      const { element, textNode } = ui.messageBubble({
        role: "user",
        status: "complete",
        text: message.content,
      });
      element.dataset.messageId = message.id;
      this.el.transcript.append(element);
      this.messages.set(message.id, { id: message.id, role: "user", element, textNode });
      return;
    }
    const record = this.addAssistant(message.id, message.status, message.attempt, message.content);
    if (message.status === "failed") {
      ui.setBubbleError(record.element, ui.describeError(message.error_type, ""));
    }
    ui.setBubbleSources(record.element, message.sources);
  }

  addUserBubble(text, state, clientMessageId) {
    const { element, textNode } = ui.messageBubble({ role: "user", status: state, text });
    element.dataset.clientMessageId = clientMessageId;
    ui.stickToBottom(this.el.transcript, () => this.el.transcript.append(element));
    return { id: null, role: "user", element, textNode };
  }

  addAssistant(id, status, attempt = 0, content = "") {
    const { element, textNode } = ui.messageBubble({ role: "assistant", status, text: content });
    element.dataset.messageId = id;
    ui.stickToBottom(this.el.transcript, () => this.el.transcript.append(element));
    const record = {
      id,
      role: "assistant",
      status,
      element,
      textNode,
      stream: new StreamText(Number.isInteger(attempt) ? attempt : 0, content || ""),
      rate: new TokenRate(),
      stopping: false,
    };
    this.messages.set(id, record);
    return record;
  }

  setStatus(record, status) {
    record.status = status;
    ui.setBubbleStatus(record.element, status);
    this.refreshControls();
  }

  refreshControls() {
    const busy = [...this.messages.values()].some(
      (m) => m.role === "assistant" && IN_PROGRESS.has(m.status) && !m.stopping,
    );
    this.el.stop.disabled = !busy;
    const usable = Boolean(this.workspaceId) && !this.loading;
    this.el.send.disabled = !usable;
    this.el.input.disabled = !usable;
  }

  // --- connection --------------------------------------------------------------------------------

  /** After every connect: rooms do not survive a reconnect, and chunks may have been missed. */
  async onConnected() {
    await this.attach();
    this.flush();
  }

  /** Joins the session's room and catches up every answer still in progress. */
  async attach() {
    const sessionId = this.sessionId;
    if (!sessionId || this.loading) return;
    try {
      await this.realtime.request("join_session", { session_id: sessionId });
    } catch (error) {
      if (!error.lost) this.banner.show(ui.describeError(error.errorType, error.message));
      return;
    }
    if (sessionId !== this.sessionId) return;
    for (const record of this.messages.values()) {
      if (record.role === "assistant" && IN_PROGRESS.has(record.status)) this.resume(record);
    }
  }

  resume(record) {
    const sessionId = this.sessionId;
    record.stream.resumeInFlight = true;
    this.realtime
      .request("resume", record.stream.resumeRequest(sessionId, record.id))
      .catch((error) => {
        if (!error.lost) this.banner.show(ui.describeError(error.errorType, error.message));
      })
      .finally(() => record.stream.resumeAnswered());
  }

  // --- sending -----------------------------------------------------------------------------------

  /** Queues a message and sends it when it can; returns false when there is nothing to send. */
  send(text) {
    const message = text.trim();
    if (!message || !this.workspaceId || this.loading) return false;
    if (codePointLength(message) > MAX_MESSAGE_CHARS) {
      this.banner.show(`A message can be at most ${MAX_MESSAGE_CHARS} characters long.`);
      return false;
    }
    const item = {
      clientMessageId: newClientMessageId(),
      text: message,
      workspaceId: this.workspaceId,
      sessionId: this.sessionId,
      draftId: this.draftId,
      state: "queued",
      lost: false,
      record: null,
    };
    item.record = this.addUserBubble(message, "queued", item.clientMessageId);
    this.outbox.push(item);
    this.showOutbox();
    this.flush();
    return true;
  }

  showOutbox() {
    ui.renderOutbox(
      this.el.outbox,
      this.outbox.filter((item) => item.state === "queued"),
    );
  }

  /** Sends the queue in order, one ack at a time (a session answers in the order sent). */
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.outbox.length && this.realtime?.connected) {
        const item = this.outbox[0];
        this.setItemState(item, "sending");
        const payload = {
          workspace_id: item.workspaceId,
          message: item.text,
          client_message_id: item.clientMessageId,
        };
        if (item.sessionId) payload.session_id = item.sessionId;
        let ack;
        try {
          ack = await this.realtime.request("chat_message", payload);
        } catch (error) {
          if (error.lost) {
            // It may have arrived: the same client_message_id goes again on the next chance.
            item.lost = true;
            this.setItemState(item, "queued");
            if (this.realtime.connected) {
              clearTimeout(this.retryTimer);
              this.retryTimer = setTimeout(() => this.flush(), RETRY_UNACKED_MS);
            }
            break;
          }
          this.outbox.shift();
          this.setItemState(item, "failed");
          const words = ui.describeError(error.errorType, error.message);
          ui.setBubbleError(item.record.element, words);
          this.banner.show(words);
          continue;
        }
        this.outbox.shift();
        this.accepted(item, ack);
      }
    } finally {
      this.flushing = false;
      this.showOutbox();
    }
  }

  setItemState(item, state) {
    item.state = state;
    if (item.record) ui.setBubbleStatus(item.record.element, state);
    this.showOutbox();
  }

  accepted(item, ack) {
    const visible = this.inView(item);
    if (!item.sessionId) {
      // The rest of that draft goes to the session this first message created.
      for (const other of this.outbox) {
        if (!other.sessionId && other.draftId === item.draftId) other.sessionId = ack.session_id;
      }
      if (visible) {
        this.sessionId = ack.session_id;
        this.draftId = null;
        this.onSessionStarted(ack.session_id);
      }
    }
    item.sessionId = ack.session_id;
    if (!visible) return;

    const bubble = item.record;
    if (this.messages.has(ack.user_message_id)) {
      bubble.element.remove(); // the history already shows it: an earlier send did arrive
    } else {
      bubble.id = ack.user_message_id;
      bubble.element.dataset.messageId = ack.user_message_id;
      ui.setBubbleStatus(bubble.element, "complete");
      this.messages.set(ack.user_message_id, bubble);
    }
    let answer = this.messages.get(ack.message_id);
    if (!answer) answer = this.addAssistant(ack.message_id, "pending");
    // After a lost ack the answer may have started (or ended) while this page was not in the room.
    if (item.lost && IN_PROGRESS.has(answer.status)) this.resume(answer);
    this.refreshControls();
  }

  // --- Stop --------------------------------------------------------------------------------------

  /** Cancels the answer in progress (the oldest one, which is the one streaming). */
  async stop() {
    const record = [...this.messages.values()].find(
      (m) => m.role === "assistant" && IN_PROGRESS.has(m.status),
    );
    if (!record || !this.sessionId) return;
    record.stopping = true;
    this.refreshControls();
    try {
      await this.realtime.request("cancel_message", {
        session_id: this.sessionId,
        message_id: record.id,
      });
      // chat_cancelled (to the room) carries the text: the bubble is settled when it arrives.
    } catch (error) {
      record.stopping = false;
      this.refreshControls();
      this.banner.show(ui.failure("Could not stop the answer.", error));
    }
  }

  // --- server events -----------------------------------------------------------------------------

  /** The record for an event of the session on screen (made on the spot for an unknown answer). */
  recordFor(event) {
    if (this.loading || !this.sessionId || event.session_id !== this.sessionId) return null;
    const record = this.messages.get(event.message_id);
    if (record) return record.role === "assistant" ? record : null;
    return this.addAssistant(event.message_id, "pending");
  }

  onChunk(event) {
    const record = this.recordFor(event);
    if (!record) return;
    // No chunk follows a final event, except one of a newer attempt: that one starts over.
    const newer = Number.isInteger(event.attempt) && event.attempt > record.stream.attempt;
    if (!IN_PROGRESS.has(record.status) && !newer) return;
    if (newer && !IN_PROGRESS.has(record.status)) {
      ui.setBubbleError(record.element, "");
      ui.setBubbleSources(record.element, []);
    }
    const result = record.stream.apply(event);
    if (result.reset) {
      record.textNode.data = "";
      record.rate = new TokenRate();
    }
    if (result.outcome === "gap") {
      if (result.resume) this.resume(record);
      return;
    }
    if (result.outcome !== "appended") return;
    if (record.status === "pending") this.setStatus(record, "streaming");
    ui.stickToBottom(this.el.transcript, () => record.textNode.appendData(result.added));
    if (event.seq >= 0) {
      record.rate.addChunk(performance.now());
      this.showRate(record);
    }
  }

  onFinal(event, status, text) {
    const record = this.recordFor(event);
    if (!record) return;
    if (!record.stream.settle(event.attempt, text)) return;
    ui.stickToBottom(this.el.transcript, () => {
      record.textNode.data = record.stream.text;
      if (status === "complete") ui.setBubbleSources(record.element, event.sources);
    });
    record.stopping = false;
    this.setStatus(record, status);
    if (status === "complete") {
      record.rate.finish(event.usage?.completion_tokens, performance.now());
    }
    this.showRate(record);
  }

  onChatError(event) {
    const record = this.recordFor(event);
    if (!record) return;
    const words = ui.describeError(event.error_type, event.message);
    const hint = event.retryable ? " You can send it again." : "";
    record.stopping = false;
    this.setStatus(record, "failed");
    ui.setBubbleError(record.element, words + hint);
    this.banner.show(words + hint);
  }

  showRate(record) {
    const rate = record.rate.perSecond(performance.now());
    this.el.rate.textContent = rate === null ? "" : `${rate.toFixed(1)} tokens/s`;
  }
}
