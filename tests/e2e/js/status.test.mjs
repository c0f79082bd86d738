// Status merging and the token rate (app/web/static/status.js, rate.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TokenRate } from "../../../app/web/static/rate.js";
import {
  clampProgress,
  mergeDocumentState,
  mergeWorkspaceStatus,
} from "../../../app/web/static/status.js";

describe("mergeWorkspaceStatus", () => {
  it("moves forward and never back", () => {
    assert.equal(mergeWorkspaceStatus(undefined, "provisioning"), "provisioning");
    assert.equal(mergeWorkspaceStatus("provisioning", "ready"), "ready");
    // A REST answer made before the ready event arrives late: it must not undo it.
    assert.equal(mergeWorkspaceStatus("ready", "provisioning"), "ready");
    assert.equal(mergeWorkspaceStatus("failed", "provisioning"), "failed");
  });

  it("an unknown status does not replace a known one", () => {
    assert.equal(mergeWorkspaceStatus("ready", "bogus"), "ready");
  });
});

describe("mergeDocumentState", () => {
  const s = (status, progress, message = null) => ({ status, progress, message });

  it("keeps the later stage", () => {
    assert.deepEqual(mergeDocumentState(s("ready", 1), s("processing", 0.4)), s("ready", 1));
    const started = mergeDocumentState(s("queued", 0), s("processing", 0.2));
    assert.deepEqual(started, s("processing", 0.2));
  });

  it("progress in the same stage never goes back", () => {
    const merged = mergeDocumentState(s("processing", 0.6, "chunking"), s("processing", 0.3, null));
    assert.equal(merged.progress, 0.6);
    assert.equal(merged.message, "chunking");
  });

  it("a failure carries its message", () => {
    const merged = mergeDocumentState(s("processing", 0.5), s("failed", 0.5, "not a PDF"));
    assert.deepEqual(merged, s("failed", 0.5, "not a PDF"));
  });

  it("clamps progress into 0..1", () => {
    assert.equal(clampProgress(1.7), 1);
    assert.equal(clampProgress(-0.2), 0);
    assert.equal(clampProgress("nope"), 0);
    assert.equal(mergeDocumentState(null, s("processing", 3)).progress, 1);
  });
});

describe("TokenRate", () => {
  it("gives nothing until there are two tokens over a quarter second", () => {
    const rate = new TokenRate();
    assert.equal(rate.perSecond(0), null);
    rate.addChunk(1000);
    assert.equal(rate.perSecond(2000), null);
    rate.addChunk(1100);
    assert.equal(rate.perSecond(1100), null);
  });

  it("counts intervals from the first token", () => {
    const rate = new TokenRate();
    for (let i = 0; i <= 20; i += 1) rate.addChunk(1000 + i * 50); // 21 tokens, 20 per second
    assert.equal(rate.perSecond(2000), 20);
  });

  it("uses the provider's completion token count at the end", () => {
    const rate = new TokenRate();
    rate.addChunk(0);
    rate.addChunk(500);
    rate.finish(41, 1000);
    assert.equal(rate.perSecond(1000), 40);
    const ignored = new TokenRate();
    ignored.addChunk(0);
    ignored.addChunk(1000);
    ignored.finish(null, 1000);
    assert.equal(ignored.perSecond(1000), 1);
  });
});
