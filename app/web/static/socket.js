// The Socket.IO half of PROTOCOL.md: one connection per signed-in page, its state for the badge,
// and client events sent with an acknowledgement whose `{ok: false}` becomes a rejected promise.
//
// socket.io-client buffers events emitted while disconnected and sends them on reconnect; the page
// does not rely on that: `request` refuses at once while offline, and the chat keeps its own queue
// of unsent messages (with their client_message_id), so nothing is sent twice behind its back.

import { io } from "/vendor/socket.io.esm.min.js";

/** How long an acknowledgement may take before the call counts as lost. */
export const ACK_TIMEOUT_MS = 10_000;

/** After the server itself closed the connection (an expired token, a client too far behind). */
const SERVER_DISCONNECT_RETRY_MS = 1_000;

/** A client event that was refused (`errorType` from PROTOCOL.md) or never acknowledged. */
export class RealtimeError extends Error {
  constructor(errorType, message) {
    super(message);
    this.name = "RealtimeError";
    this.errorType = errorType;
  }

  /** True when the event may or may not have reached the server: sending again is the remedy. */
  get lost() {
    return this.errorType === "offline" || this.errorType === "no_ack";
  }
}

export class Realtime {
  /**
   * @param {object} options
   * @param {() => string | null} options.getToken read at every (re)connect, so a new token is used
   * @param {(state: string) => void} options.onState
   *        "connecting" | "connected" | "reconnecting" | "offline"
   * @param {(first: boolean) => void} options.onConnect after each successful connect
   * @param {(message: string) => void} options.onUnauthorized the server refused the token
   */
  constructor({ getToken, onState, onConnect, onUnauthorized }) {
    this.getToken = getToken;
    this.onState = onState;
    this.onConnect = onConnect;
    this.onUnauthorized = onUnauthorized;
    this.state = "offline";
    this.socket = null;
    this.everConnected = false;
    this.retryTimer = null;
    this.handleOffline = () => this.setState("offline");
    this.handleOnline = () => {
      const socket = this.socket;
      if (!socket || socket.connected) return;
      this.setState("reconnecting");
      // Back online: try at once instead of at the end of the current backoff delay.
      socket.disconnect();
      socket.connect();
    };
  }

  /** Opens the connection (same origin as the page). */
  start() {
    this.setState("connecting");
    const socket = io({
      auth: (send) => send({ token: this.getToken() }),
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
    });
    this.socket = socket;

    socket.on("connect", () => {
      const first = !this.everConnected;
      this.everConnected = true;
      this.setState("connected");
      this.onConnect(first);
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return; // our own stop()
      if (reason === "io server disconnect") {
        // The server closed it on purpose; socket.io-client does not retry that by itself.
        this.setState("reconnecting");
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => socket.connect(), SERVER_DISCONNECT_RETRY_MS);
        return;
      }
      this.setState(socket.active ? "reconnecting" : "offline");
    });
    socket.on("connect_error", (error) => {
      if (error?.data?.error_type === "unauthorized") {
        this.stop();
        this.onUnauthorized(error.message || "The server refused the sign-in token.");
        return;
      }
      if (socket.active) this.setState(this.everConnected ? "reconnecting" : "connecting");
      else this.setState("offline");
    });
    socket.io.on("reconnect_attempt", () =>
      this.setState(this.everConnected ? "reconnecting" : "connecting"),
    );
    socket.io.on("reconnect_failed", () => this.setState("offline"));

    window.addEventListener("offline", this.handleOffline);
    window.addEventListener("online", this.handleOnline);
  }

  /** Closes the connection for good (sign-out). */
  stop() {
    clearTimeout(this.retryTimer);
    window.removeEventListener("offline", this.handleOffline);
    window.removeEventListener("online", this.handleOnline);
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.io.removeAllListeners();
      this.socket.disconnect();
    }
    this.socket = null;
    this.everConnected = false;
    this.setState("offline");
  }

  get connected() {
    return Boolean(this.socket?.connected);
  }

  /** Listens to a server event. */
  on(event, handler) {
    this.socket.on(event, handler);
  }

  /**
   * Sends a client event and waits for its ack: resolves with the ack when `ok`, rejects with a
   * RealtimeError otherwise (`offline` when not connected: nothing was sent; `no_ack` when the
   * ack did not come: it may or may not have arrived).
   */
  async request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
    if (!this.connected) {
      throw new RealtimeError("offline", "Not connected to the server.");
    }
    let ack;
    try {
      ack = await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch {
      throw new RealtimeError("no_ack", `No answer from the server to ${event}.`);
    }
    if (ack && ack.ok === true) return ack;
    throw new RealtimeError(
      ack?.error_type || "server_error",
      ack?.message || `The server refused ${event}.`,
    );
  }

  setState(state) {
    const shown = state !== "connected" && !navigator.onLine ? "offline" : state;
    if (shown === this.state) return;
    this.state = shown;
    this.onState(shown);
  }
}
