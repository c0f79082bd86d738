// The chunk rules of PROTOCOL.md, kept free of the DOM and the socket so that Node can test them.
//
// A dropped connection or a duplicate delivery must never garble an answer: each chat_chunk says
// where it belongs (`offset`, in Unicode code points) and which generation it belongs to
// (`attempt`), and the client rebuilds the text from those alone, never from arrival order.

/** Length in code points, the way the server (Python's len) counts offsets; not `.length`. */
export function codePointLength(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** `text` without its first `count` code points (a surrogate pair is never split). */
export function dropCodePoints(text, count) {
  if (count <= 0) return text;
  return [...text].slice(count).join("");
}

/**
 * The text of one assistant message, for its current attempt.
 *
 * `attempt` 0 means "not known yet" (an answer that has not produced anything); any chunk of a
 * real attempt then adopts that attempt.
 */
export class StreamText {
  constructor(attempt = 0, text = "") {
    this.attempt = attempt;
    this.text = text;
    this.length = codePointLength(text);
    /** True between sending a `resume` for a gap and its ack: one resume per gap, not per chunk. */
    this.resumeInFlight = false;
  }

  /**
   * Applies one chat_chunk {attempt, offset, chunk}.
   *
   * Returns {outcome, reset, added, resume}:
   * - outcome "stale": a chunk of an older attempt (or a malformed one), dropped;
   * - outcome "duplicate": everything in it is already in the text;
   * - outcome "appended": `added` (the part not seen before) was appended;
   * - outcome "gap": text before this chunk is missing; `resume` is true when the caller should
   *   send `resume` with {attempt: this.attempt, offset: this.length} (false while one is already
   *   on its way);
   * `reset` is true when the chunk started a newer attempt and the old partial text was dropped.
   */
  apply({ attempt, offset, chunk }) {
    const malformed =
      !Number.isInteger(attempt) ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      typeof chunk !== "string";
    if (malformed || attempt < this.attempt) {
      return { outcome: "stale", reset: false, added: "", resume: false };
    }
    let reset = false;
    if (attempt > this.attempt) {
      reset = this.length > 0;
      this.attempt = attempt;
      this.text = "";
      this.length = 0;
      this.resumeInFlight = false;
    }
    const size = codePointLength(chunk);
    if (offset + size <= this.length) {
      return { outcome: "duplicate", reset, added: "", resume: false };
    }
    if (offset > this.length) {
      const resume = !this.resumeInFlight;
      this.resumeInFlight = true;
      return { outcome: "gap", reset, added: "", resume };
    }
    const added = dropCodePoints(chunk, this.length - offset);
    this.text += added;
    this.length = offset + size;
    return { outcome: "appended", reset, added, resume: false };
  }

  /** The ack of a resume arrived (or the connection it was sent on is gone): gaps may ask again. */
  resumeAnswered() {
    this.resumeInFlight = false;
  }

  /**
   * A final event (chat_complete's full_response, chat_cancelled's partial_response) carries the
   * whole text of its attempt, which is what the server stored: it replaces what the chunks built.
   * Returns false (and changes nothing) for a final event of an attempt older than the current one.
   */
  settle(attempt, text) {
    if (typeof text !== "string") return false;
    if (Number.isInteger(attempt) && attempt < this.attempt) return false;
    if (Number.isInteger(attempt)) this.attempt = attempt;
    this.text = text;
    this.length = codePointLength(text);
    this.resumeInFlight = false;
    return true;
  }

  /** The payload of a `resume` for this text (no attempt while it is not known yet). */
  resumeRequest(sessionId, messageId) {
    const request = { session_id: sessionId, message_id: messageId, offset: this.length };
    if (this.attempt > 0) request.attempt = this.attempt;
    return request;
  }
}
