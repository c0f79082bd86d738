// The real JavaScript socket.io-client v4 (the browser app's library) against a live server.
// Usage: node socketio_client.mjs WEB_DIR BASE_URL TOKEN STREAM_WORKSPACE CANCEL_WORKSPACE
// Prints one JSON line with what it saw; the Python test asserts on it.
import { createRequire } from "node:module";

const [webDir, base, token, streamWs, cancelWs] = process.argv.slice(2);
const { io } = createRequire(webDir + "/package.json")("socket.io-client");
const out = {};
const finish = (extra) => { console.log(JSON.stringify({ ...out, ...extra })); process.exit(0); };
setTimeout(() => finish({ error: "timed out" }), 30000).unref();

// 1. refused with a bad token
out.refusal = await new Promise((resolve) => {
  const bad = io(base, { auth: { token: "bad-token" }, transports: ["websocket"], reconnection: false });
  bad.on("connect", () => resolve({ accepted: true }));
  bad.on("connect_error", (e) => { bad.close(); resolve({ message: e.message, data: e.data }); });
});

const s = io(base, { auth: { token }, transports: ["websocket"], reconnection: false });
await new Promise((resolve, reject) => { s.on("connect", resolve); s.on("connect_error", reject); });

// 2. stream an answer, applying the chunk rules with code-point offsets
const texts = new Map();
const finals = new Map();
const waiters = new Map();
s.on("chat_chunk", (c) => {
  const text = texts.get(c.message_id) ?? "";
  const have = [...text].length;
  if (c.offset + [...c.chunk].length <= have) return;
  if (c.offset > have) { out.gap = true; return; }
  texts.set(c.message_id, text + [...c.chunk].slice(have - c.offset).join(""));
  (out.chunks ??= {})[c.message_id] = ((out.chunks ?? {})[c.message_id] ?? 0) + 1;
  const w = waiters.get(c.message_id);
  if (w && out.chunks[c.message_id] >= w.n) { waiters.delete(c.message_id); w.resolve(); }
});
for (const name of ["chat_complete", "chat_cancelled", "chat_error"]) {
  s.on(name, (p) => { finals.get(p.message_id)?.({ name, ...p }); });
}
const finalOf = (id) => new Promise((resolve) => finals.set(id, resolve));
const chunksOf = (id, n) => new Promise((resolve) => waiters.set(id, { n, resolve }));
const ask = (payload) => new Promise((resolve) => s.emit("chat_message", payload, resolve));

const ack = await ask({ workspace_id: streamWs, message: "naïve café 👋 日本語?" });
const done = await finalOf(ack.message_id);
out.stream = { ack, final: done.name, full: done.full_response, text: texts.get(ack.message_id) };

// 3. cancel one mid-stream
const ack2 = await ask({ workspace_id: cancelWs, message: "stop me" });
const ended = finalOf(ack2.message_id);
await chunksOf(ack2.message_id, 3);
const cancelAck = await new Promise((resolve) => s.emit("cancel_message", { session_id: ack2.session_id }, resolve));
const cancelled = await ended;
out.cancel = { ack: cancelAck, final: cancelled.name, partial: cancelled.partial_response, text: texts.get(ack2.message_id) };
s.close();
finish({});
