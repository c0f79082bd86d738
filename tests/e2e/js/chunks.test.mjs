// The chunk rules of PROTOCOL.md as the page applies them (app/web/static/chunks.js).
// Run: node --test tests/e2e/js/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { StreamText, codePointLength, dropCodePoints } from "../../../app/web/static/chunks.js";

const chunk = (offset, text, attempt = 1) => ({ attempt, offset, chunk: text, seq: 0 });

describe("codePointLength", () => {
  it("counts code points, not UTF-16 units", () => {
    assert.equal(codePointLength(""), 0);
    assert.equal(codePointLength("abc"), 3);
    assert.equal(codePointLength("👋"), 1); // "👋".length is 2
    assert.equal(codePointLength("naïve café 日本語"), 14);
  });

  it("dropCodePoints never splits a surrogate pair", () => {
    assert.equal(dropCodePoints("👋🎉x", 1), "🎉x");
    assert.equal(dropCodePoints("👋", 0), "👋");
    assert.equal(dropCodePoints("ab", 5), "");
  });
});

describe("StreamText.apply", () => {
  it("appends chunks that follow each other", () => {
    const s = new StreamText();
    assert.equal(s.apply(chunk(0, "Hello ")).outcome, "appended");
    const r = s.apply(chunk(6, "world"));
    assert.deepEqual(r, { outcome: "appended", reset: false, added: "world", resume: false });
    assert.equal(s.text, "Hello world");
    assert.equal(s.length, 11);
  });

  it("drops an exact duplicate and a chunk wholly inside the text", () => {
    const s = new StreamText();
    s.apply(chunk(0, "abc"));
    s.apply(chunk(3, "def"));
    assert.equal(s.apply(chunk(3, "def")).outcome, "duplicate");
    assert.equal(s.apply(chunk(1, "bc")).outcome, "duplicate");
    assert.equal(s.text, "abcdef");
  });

  it("an empty chunk at the end of the text changes nothing", () => {
    const s = new StreamText(1, "abc");
    assert.equal(s.apply(chunk(3, "")).outcome, "duplicate");
    assert.equal(s.text, "abc");
  });

  it("trims an overlap, counting the offset in code points", () => {
    const s = new StreamText();
    s.apply(chunk(0, "👋 hé"));
    assert.equal(s.length, 4);
    // A catch-up chunk from offset 2 overlaps " hé" by two code points.
    const r = s.apply({ attempt: 1, offset: 2, chunk: "hé 日本", seq: -1 });
    assert.equal(r.outcome, "appended");
    assert.equal(r.added, " 日本");
    assert.equal(s.text, "👋 hé 日本");
    assert.equal(s.length, codePointLength(s.text));
  });

  it("reports a gap once, then again only after the resume was answered", () => {
    const s = new StreamText();
    s.apply(chunk(0, "abc"));
    const first = s.apply(chunk(10, "xyz"));
    assert.deepEqual(first, { outcome: "gap", reset: false, added: "", resume: true });
    assert.equal(s.apply(chunk(13, "uvw")).resume, false, "no second resume while one is out");
    assert.equal(s.text, "abc", "text after a gap is not appended");
    s.resumeAnswered();
    assert.equal(s.apply(chunk(16, "!")).resume, true);
  });

  it("fills a gap from the resume's catch-up chunk and then accepts live chunks", () => {
    const s = new StreamText();
    s.apply(chunk(0, "one "));
    assert.equal(s.apply(chunk(8, "three ")).outcome, "gap");
    assert.deepEqual(s.resumeRequest("S", "M"), {
      session_id: "S",
      message_id: "M",
      attempt: 1,
      offset: 4,
    });
    s.apply({ attempt: 1, offset: 4, chunk: "two three ", seq: -1 });
    assert.equal(s.resumeInFlight, true, "only the resume's ack ends the wait");
    s.apply(chunk(8, "three ")); // the live copy of what the catch-up brought
    s.apply(chunk(14, "four"));
    assert.equal(s.text, "one two three four");
  });

  it("a newer attempt resets the text; chunks of the older one are then dropped", () => {
    const s = new StreamText();
    s.apply(chunk(0, "partial answ"));
    const r = s.apply(chunk(0, "Fresh ", 2));
    assert.equal(r.outcome, "appended");
    assert.equal(r.reset, true);
    assert.equal(s.text, "Fresh ");
    assert.equal(s.attempt, 2);
    assert.equal(s.apply(chunk(12, "er", 1)).outcome, "stale");
    assert.equal(s.text, "Fresh ");
  });

  it("a newer attempt that starts past 0 is a gap from 0", () => {
    const s = new StreamText(1, "old text");
    const r = s.apply(chunk(5, "later", 2));
    assert.equal(r.outcome, "gap");
    assert.equal(r.reset, true);
    assert.equal(s.text, "");
    assert.deepEqual(s.resumeRequest("S", "M"), {
      session_id: "S",
      message_id: "M",
      attempt: 2,
      offset: 0,
    });
  });

  it("an unknown attempt (0) adopts the first one seen, without calling it a reset", () => {
    const s = new StreamText();
    assert.equal(s.resumeRequest("S", "M").attempt, undefined, "no attempt while unknown");
    const r = s.apply(chunk(0, "hi", 3));
    assert.equal(r.reset, false);
    assert.equal(s.attempt, 3);
  });

  it("drops malformed chunks instead of corrupting the text", () => {
    const s = new StreamText(1, "abc");
    for (const bad of [
      { attempt: 1, offset: -1, chunk: "x" },
      { attempt: 1, offset: 1.5, chunk: "x" },
      { attempt: 1, offset: "3", chunk: "x" },
      { attempt: 1, offset: 3, chunk: null },
      { attempt: "1", offset: 3, chunk: "x" },
      { offset: 3, chunk: "x" },
    ]) {
      assert.equal(s.apply(bad).outcome, "stale", JSON.stringify(bad));
    }
    assert.equal(s.text, "abc");
  });

  it("rebuilds the text from duplicated, reordered and lost deliveries, resuming at gaps", () => {
    const words = ["Ünïcode ", "👋 ", "naïve ", "日本語 ", "café ", "𝔘𝔫𝔦 ", "end."];
    const full = words.join("");
    const parts = [];
    let offset = 0;
    for (const w of words) {
      parts.push(chunk(offset, w));
      offset += codePointLength(w);
    }
    // A fixed, scrambled delivery: repeats, one part lost (index 3), out-of-order arrivals.
    const order = [0, 0, 2, 1, 2, 4, 5, 1, 6, 6, 0];
    const s = new StreamText();
    let resumes = 0;
    for (const i of order) {
      const r = s.apply(parts[i]);
      if (r.resume) {
        resumes += 1;
        // The server answers a resume with the text from the offset asked for, as one chunk.
        const rest = dropCodePoints(full, s.length);
        const catchUp = { attempt: 1, offset: s.length, chunk: rest, seq: -1 };
        assert.equal(s.apply(catchUp).outcome, "appended");
        s.resumeAnswered();
      }
    }
    assert.equal(s.text, full);
    assert.equal(s.length, codePointLength(full));
    assert.equal(resumes, 1, "one gap, one resume");
  });
});

describe("StreamText.settle", () => {
  it("a final event's text replaces what the chunks built", () => {
    const s = new StreamText();
    s.apply(chunk(0, "abc"));
    assert.equal(s.settle(1, "abcdef"), true);
    assert.equal(s.text, "abcdef");
    assert.equal(s.length, 6);
  });

  it("ignores a final event of an older attempt", () => {
    const s = new StreamText(2, "new");
    assert.equal(s.settle(1, "old full response"), false);
    assert.equal(s.text, "new");
  });

  it("adopts a final event of a newer attempt", () => {
    const s = new StreamText(1, "abandoned");
    assert.equal(s.settle(2, "regenerated 👋"), true);
    assert.equal(s.attempt, 2);
    assert.equal(s.length, 13);
  });

  it("refuses a final event without text", () => {
    const s = new StreamText(1, "keep");
    assert.equal(s.settle(1, undefined), false);
    assert.equal(s.text, "keep");
  });
});
