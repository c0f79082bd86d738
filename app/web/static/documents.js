// The workspace's documents: upload, list, and a progress bar per document moved by the live
// `document_status` events (the socket is in the workspace's room while it is on screen).

import { mergeDocumentState } from "./status.js";
import * as ui from "./ui.js";

/** Refetch the list at most this often when events name documents the page has not seen. */
const UNKNOWN_REFRESH_MS = 1_000;

export class Documents {
  /**
   * @param {object} options
   * @param {import("./api.js").Api} options.api
   * @param {HTMLElement} options.list
   * @param {HTMLInputElement} options.input the file input
   * @param {import("./ui.js").Banner} options.banner
   */
  constructor({ api, list, input, banner }) {
    this.api = api;
    this.list = list;
    this.input = input;
    this.banner = banner;
    this.workspaceId = null;
    this.rows = new Map(); // document id → {row, state}
    this.early = new Map(); // document id → the latest event that came before its row
    this.refreshTimer = null;
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = "";
      for (const file of files) this.upload(file);
    });
  }

  clear() {
    this.workspaceId = null;
    this.rows = new Map();
    this.early = new Map();
    clearTimeout(this.refreshTimer);
    this.list.replaceChildren();
    this.input.disabled = true;
  }

  async load(workspaceId) {
    this.clear();
    this.workspaceId = workspaceId;
    this.input.disabled = false;
    let documents;
    try {
      documents = await this.api.listDocuments(workspaceId);
    } catch (error) {
      if (workspaceId === this.workspaceId) {
        this.banner.show(ui.failure("Could not list the documents.", error));
      }
      return;
    }
    if (workspaceId !== this.workspaceId) return;
    for (const doc of documents) this.show(doc);
    if (!documents.length) this.showEmpty();
  }

  showEmpty() {
    if (!this.list.children.length) {
      this.list.append(ui.h("li", { className: "empty", text: "No documents yet." }));
    }
  }

  /** Adds or updates the row of a document from a REST answer. */
  show(doc) {
    this.list.querySelector(".empty")?.remove();
    const incoming = { status: doc.status, progress: doc.progress, message: doc.error ?? null };
    let known = this.rows.get(doc.id);
    if (known) {
      known.state = mergeDocumentState(known.state, incoming);
    } else {
      known = { row: ui.documentRow(doc, incoming), state: mergeDocumentState(null, incoming) };
      this.rows.set(doc.id, known);
      this.list.prepend(known.row);
    }
    const early = this.early.get(doc.id);
    if (early) {
      this.early.delete(doc.id);
      known.state = mergeDocumentState(known.state, early);
    }
    ui.updateDocumentRow(known.row, known.state);
  }

  async upload(file) {
    const workspaceId = this.workspaceId;
    if (!workspaceId) return;
    this.list.querySelector(".empty")?.remove();
    const placeholder = ui.documentRow(
      { filename: file.name, size_bytes: file.size },
      { status: "uploading", progress: 0, message: null },
    );
    this.list.prepend(placeholder);
    let doc;
    try {
      doc = await this.api.uploadDocument(workspaceId, file);
    } catch (error) {
      const words = ui.describeError(error.errorType, error.message);
      ui.updateDocumentRow(placeholder, { status: "failed", progress: 0, message: words });
      this.banner.show(`${file.name}: ${words}`);
      return;
    }
    placeholder.remove();
    if (workspaceId !== this.workspaceId) return;
    // The same content again answers with the existing document: its row is updated, not doubled.
    this.show(doc);
  }

  /** A `document_status` event {workspace_id, document_id, status, progress, message}. */
  onStatus(event) {
    if (event.workspace_id !== this.workspaceId) return;
    const known = this.rows.get(event.document_id);
    if (!known) {
      // Uploaded elsewhere, or its upload answer is still on the way: the list will tell.
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refresh(), UNKNOWN_REFRESH_MS);
      const early = mergeDocumentState(this.early.get(event.document_id), event);
      this.early.set(event.document_id, early);
      return;
    }
    known.state = mergeDocumentState(known.state, event);
    ui.updateDocumentRow(known.row, known.state);
  }

  async refresh() {
    const workspaceId = this.workspaceId;
    if (!workspaceId) return;
    try {
      const documents = await this.api.listDocuments(workspaceId);
      if (workspaceId !== this.workspaceId) return;
      for (const doc of documents) this.show(doc);
    } catch {
      // The next event tries again; a failed refresh is not worth a banner.
    }
  }
}
