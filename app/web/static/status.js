// Status merging for workspaces and documents.
//
// The same status reaches the page by several roads: a REST answer, a join_workspace ack, and the
// live events (which may arrive before the REST answer that created the thing). Statuses only move
// forward, so the page keeps the most advanced one it has seen instead of the last one to arrive.

const WORKSPACE_RANK = { provisioning: 0, ready: 1, failed: 1 };
const DOCUMENT_RANK = { queued: 0, processing: 1, ready: 2, failed: 2 };

function rank(table, status) {
  return Object.hasOwn(table, status) ? table[status] : -1;
}

/** The workspace status to show, given the one shown and a newly reported one. */
export function mergeWorkspaceStatus(current, incoming) {
  if (current === undefined || current === null) return incoming;
  return rank(WORKSPACE_RANK, incoming) > rank(WORKSPACE_RANK, current) ? incoming : current;
}

/**
 * A document's {status, progress, message} after a newly reported state: a later stage wins; in
 * the same stage the progress never goes back. `progress` is clamped to 0..1.
 */
export function mergeDocumentState(current, incoming) {
  const next = {
    status: incoming.status,
    progress: clampProgress(incoming.progress),
    message: incoming.message ?? null,
  };
  if (!current) return next;
  const before = rank(DOCUMENT_RANK, current.status);
  const after = rank(DOCUMENT_RANK, next.status);
  if (after < before) return current;
  if (after === before && next.status === current.status) {
    return {
      status: current.status,
      progress: Math.max(current.progress, next.progress),
      message: next.message ?? current.message,
    };
  }
  return next;
}

/** Progress as a number in 0..1 (a finished document shows a full bar). */
export function clampProgress(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  return Math.min(1, Math.max(0, n));
}
