// Wiring: sign-in, the workspace and session lists, and the parts (Realtime, Chat, Documents)
// joined together. Which workspace and session are open lives in the URL's hash, so a reload
// comes back to the same conversation.

import { Api } from "./api.js";
import { Chat } from "./chat.js";
import { Documents } from "./documents.js";
import { Realtime } from "./socket.js";
import { mergeWorkspaceStatus } from "./status.js";
import * as ui from "./ui.js";
import { inTime } from "./wait.js";

const TOKEN_KEY = "insighthub.token";
const EMAIL_KEY = "insighthub.email";

const $ = (testid) => ui.byTestId(testid);
const authView = document.getElementById("auth-view");
const appView = document.getElementById("app-view");
const authForm = document.getElementById("auth-form");
const workspaceForm = document.getElementById("workspace-form");
const composer = document.getElementById("composer");

const banner = new ui.Banner($("error-banner"));
const api = new Api(
  () => localStorage.getItem(TOKEN_KEY),
  () => signOut("Your sign-in has expired. Sign in again."),
);

const state = {
  realtime: null,
  workspaces: [], // as GET /api/workspaces answers, newest status merged in
  statusById: new Map(), // workspace id → the most advanced status seen
  workspaceId: null,
  sessions: [],
  sessionId: null,
};

const chat = new Chat({
  realtime: null,
  api,
  elements: {
    transcript: $("transcript"),
    outbox: $("outbox"),
    stop: $("stop"),
    send: $("send"),
    input: $("message-input"),
    rate: $("tokens-per-second"),
  },
  banner,
  onSessionStarted: (sessionId) => {
    state.sessionId = sessionId;
    writeHash();
    loadSessions();
  },
});

const documents = new Documents({
  api,
  list: $("document-list"),
  input: $("upload-input"),
  banner,
});

// A handle for debugging and for the end-to-end test (which cuts the transport through it).
window.insighthub = {
  get socket() {
    return state.realtime?.socket ?? null;
  },
};

// --- the hash: #workspace=<id>&session=<id> ------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { workspaceId: params.get("workspace"), sessionId: params.get("session") };
}

function writeHash() {
  const params = new URLSearchParams();
  if (state.workspaceId) params.set("workspace", state.workspaceId);
  if (state.sessionId) params.set("session", state.sessionId);
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

// --- signing in and out --------------------------------------------------------------------------

function showAuth(message) {
  appView.hidden = true;
  authView.hidden = false;
  $("sign-out").hidden = true;
  $("user-email").textContent = "";
  $("connection-badge").hidden = true; // no connection to speak of while signed out
  const box = $("auth-message");
  box.textContent = message || "";
  box.hidden = !message;
  $("email").value = localStorage.getItem(EMAIL_KEY) || $("email").value;
}

function credentials() {
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    showAuthMessage("Enter your email and a password.");
    return null;
  }
  return { email, password };
}

function showAuthMessage(text) {
  const box = $("auth-message");
  box.textContent = text;
  box.hidden = !text;
}

async function signIn(email, password) {
  const answer = await api.signIn(email, password);
  localStorage.setItem(TOKEN_KEY, answer.access_token);
  localStorage.setItem(EMAIL_KEY, email);
  $("password").value = "";
  await enter();
}

/** Why a sign-in failed, in words: the same after the sign-in form and after sign-up. */
function signInFailure(error) {
  if (error.status === 401) return "Wrong email or password.";
  if (error.status === 429) {
    return `Too many failed sign-ins. Try again ${inTime(error.retryAfterS)}.`;
  }
  return ui.describeError(error.errorType, error.message);
}

authForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const given = credentials();
  if (!given) return;
  try {
    await signIn(given.email, given.password);
  } catch (error) {
    showAuthMessage(signInFailure(error));
  }
});

$("sign-up").addEventListener("click", async () => {
  const given = credentials();
  if (!given) return;
  try {
    await api.register(given.email, given.password);
  } catch (error) {
    showAuthMessage(
      error.status === 409
        ? "That email already has an account: sign in instead."
        : ui.describeError(error.errorType, error.message),
    );
    return;
  }
  try {
    await signIn(given.email, given.password);
  } catch (error) {
    showAuthMessage(signInFailure(error));
  }
});

$("sign-out").addEventListener("click", () => signOut(""));

function signOut(message) {
  state.realtime?.stop();
  state.realtime = null;
  localStorage.removeItem(TOKEN_KEY);
  chat.reset();
  documents.clear();
  Object.assign(state, { workspaces: [], statusById: new Map(), workspaceId: null });
  Object.assign(state, { sessions: [], sessionId: null });
  renderWorkspaces();
  renderSessions();
  history.replaceState(null, "", location.pathname);
  showAuth(message);
}

/** Signed in (a token is stored): check it, open the socket, show the workspaces. */
async function enter() {
  let me;
  try {
    me = await api.me();
  } catch (error) {
    if (error.status !== 401) showAuth(ui.describeError(error.errorType, error.message));
    return; // a 401 has already signed out
  }
  authView.hidden = true;
  appView.hidden = false;
  $("sign-out").hidden = false;
  $("user-email").textContent = me.email;
  $("connection-badge").hidden = false;

  const realtime = new Realtime({
    getToken: () => localStorage.getItem(TOKEN_KEY),
    onState: (connection) => ui.renderBadge($("connection-badge"), connection),
    onConnect: () => onConnected(realtime),
    onUnauthorized: (message) => signOut(`Signed out: ${message}`),
  });
  state.realtime = realtime;
  realtime.start();
  chat.bind(realtime);
  realtime.on("workspace_status", onWorkspaceStatus);
  realtime.on("document_status", (event) => documents.onStatus(event));
  realtime.on("error", (event) => banner.show(ui.describeError(event.error_type, event.message)));

  await loadWorkspaces();
  const wanted = readHash();
  const pick = state.workspaces.find((ws) => ws.id === wanted.workspaceId) ?? state.workspaces[0];
  if (pick) await pickWorkspace(pick.id, wanted.sessionId);
}

async function onConnected(realtime) {
  if (realtime !== state.realtime) return;
  if (state.workspaceId) await joinWorkspace(state.workspaceId);
  await chat.onConnected();
}

// --- workspaces ----------------------------------------------------------------------------------

function setStatus(workspaceId, status) {
  const merged = mergeWorkspaceStatus(state.statusById.get(workspaceId), status);
  state.statusById.set(workspaceId, merged);
  for (const ws of state.workspaces) if (ws.id === workspaceId) ws.status = merged;
}

function onWorkspaceStatus(event) {
  setStatus(event.workspace_id, event.status);
  if (!state.workspaces.some((ws) => ws.id === event.workspace_id)) {
    loadWorkspaces(); // one this page has not listed yet (made in another tab, or shared with us)
    return;
  }
  if (event.status === "failed" && event.message) {
    banner.show(`Workspace could not be prepared: ${event.message}`);
  }
  renderWorkspaces();
}

async function loadWorkspaces() {
  try {
    const list = await api.listWorkspaces();
    state.workspaces = list;
    for (const ws of list) setStatus(ws.id, ws.status);
  } catch (error) {
    banner.show(ui.failure("Could not list the workspaces.", error));
  }
  renderWorkspaces();
}

function renderWorkspaces() {
  ui.renderWorkspaceList($("workspace-list"), state.workspaces, state.workspaceId, (id) =>
    pickWorkspace(id, null),
  );
  const current = state.workspaces.find((ws) => ws.id === state.workspaceId);
  const pill = $("workspace-status");
  pill.hidden = !current;
  if (current) {
    pill.textContent = current.status;
    pill.dataset.status = current.status;
    pill.className = `pill pill-${current.status}`;
  }
  renderTitle();
}

function renderTitle() {
  const current = state.workspaces.find((ws) => ws.id === state.workspaceId);
  const session = state.sessions.find((s) => s.id === state.sessionId);
  const title = !current
    ? "Pick or create a workspace"
    : session?.title
      ? `${current.name} · ${session.title}`
      : state.sessionId
        ? current.name
        : `${current.name} · new conversation`;
  $("chat-title").textContent = title;
}

workspaceForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("workspace-name");
  const name = input.value.trim();
  if (!name) return;
  let ws;
  try {
    ws = await api.createWorkspace(name);
  } catch (error) {
    banner.show(ui.failure("Could not create the workspace.", error));
    return;
  }
  input.value = "";
  setStatus(ws.id, ws.status);
  ws.status = state.statusById.get(ws.id);
  state.workspaces = [ws, ...state.workspaces.filter((w) => w.id !== ws.id)];
  await pickWorkspace(ws.id, null);
});

async function joinWorkspace(workspaceId) {
  const realtime = state.realtime;
  if (!realtime?.connected) return; // joined on connect
  try {
    const ack = await realtime.request("join_workspace", { workspace_id: workspaceId });
    if (ack.status) setStatus(workspaceId, ack.status);
    renderWorkspaces();
  } catch (error) {
    if (!error.lost) banner.show(ui.describeError(error.errorType, error.message));
  }
}

async function pickWorkspace(workspaceId, sessionId) {
  const previous = state.workspaceId;
  if (previous && previous !== workspaceId && state.realtime?.connected) {
    state.realtime.request("leave_workspace", { workspace_id: previous }).catch(() => {});
  }
  state.workspaceId = workspaceId;
  state.sessionId = null;
  state.sessions = [];
  renderWorkspaces();
  renderSessions();
  $("session-new").disabled = false;
  joinWorkspace(workspaceId);
  documents.load(workspaceId);
  await loadSessions();
  const known = state.sessions.some((s) => s.id === sessionId);
  await pickSession(known ? sessionId : null);
}

// --- sessions ------------------------------------------------------------------------------------

async function loadSessions() {
  const workspaceId = state.workspaceId;
  if (!workspaceId) return;
  try {
    const sessions = await api.listSessions(workspaceId);
    if (workspaceId !== state.workspaceId) return;
    state.sessions = sessions;
  } catch (error) {
    banner.show(ui.failure("Could not list the conversations.", error));
  }
  renderSessions();
}

function renderSessions() {
  ui.renderSessionList($("session-list"), state.sessions, state.sessionId, (id) => pickSession(id));
  renderTitle();
}

async function pickSession(sessionId) {
  state.sessionId = sessionId;
  writeHash();
  renderSessions();
  await chat.open(state.workspaceId, sessionId);
  if (!sessionId) $("message-input").focus();
}

$("session-new").addEventListener("click", async () => {
  const workspaceId = state.workspaceId;
  if (!workspaceId) return;
  let session;
  try {
    session = await api.createSession(workspaceId);
  } catch (error) {
    banner.show(ui.failure("Could not start a conversation.", error));
    return;
  }
  if (workspaceId !== state.workspaceId) return;
  state.sessions = [session, ...state.sessions.filter((s) => s.id !== session.id)];
  await pickSession(session.id);
});

// --- the composer --------------------------------------------------------------------------------

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("message-input");
  if (chat.send(input.value)) input.value = "";
});

$("message-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

$("stop").addEventListener("click", () => chat.stop());

// --- start ---------------------------------------------------------------------------------------

if (localStorage.getItem(TOKEN_KEY)) enter();
else showAuth("");
