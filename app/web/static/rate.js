// Tokens per second of the answer that is streaming, for the figure beside the composer.
//
// A live chat_chunk normally carries one provider token (the server only merges tokens while its
// publisher is busy), so live chunks are counted while the answer streams; when the answer ends
// with `usage.completion_tokens`, that exact count replaces the estimate. A resume's catch-up chunk
// (seq -1) holds tokens produced while the page was away, so it is not counted.

/** Below this much time since the first token, a rate would be noise: none is given. */
const MIN_WINDOW_MS = 250;

export class TokenRate {
  constructor() {
    this.tokens = 0;
    this.firstAt = null;
    this.lastAt = null;
  }

  /** One live chunk arrived at `now` (milliseconds). */
  addChunk(now) {
    if (this.firstAt === null) this.firstAt = now;
    this.lastAt = now;
    this.tokens += 1;
  }

  /** The answer ended: its exact token count, when the provider gave one. */
  finish(completionTokens, now) {
    if (Number.isInteger(completionTokens) && completionTokens > 0) this.tokens = completionTokens;
    if (this.firstAt !== null) this.lastAt = now;
  }

  /**
   * Tokens per second from the first token to `now`, or null while there is too little to tell.
   * The first token only starts the clock, so N tokens over the time of N - 1 intervals.
   */
  perSecond(now) {
    if (this.firstAt === null || this.tokens < 2) return null;
    const elapsed = now - this.firstAt;
    if (elapsed < MIN_WINDOW_MS) return null;
    return ((this.tokens - 1) * 1000) / elapsed;
  }
}
