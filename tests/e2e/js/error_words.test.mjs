// How errors read on the page (app/web/static/ui.js): words a person understands, and the
// wait a 429's Retry-After asked for.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { describeError, failure, inTime } from "../../../app/web/static/ui.js";

describe("inTime", () => {
  it("says seconds under a minute and whole minutes, rounded up, above", () => {
    assert.equal(inTime(1), "in 1 s");
    assert.equal(inTime(59), "in 59 s");
    assert.equal(inTime(60), "in 1 min");
    assert.equal(inTime(299), "in 5 min");
  });
  it("says later when the server named no time", () => {
    assert.equal(inTime(null), "later");
    assert.equal(inTime(0), "later");
  });
});

describe("failure", () => {
  it("adds the wait of a rate-limited error", () => {
    const error = { errorType: "rate_limited", message: "slow down", retryAfterS: 30 };
    assert.equal(
      failure("Could not send.", error),
      `Could not send. ${describeError("rate_limited", "slow down")} Try again in 30 s.`,
    );
  });
  it("adds nothing to an error without one", () => {
    const error = { errorType: "not_found", message: "no such session" };
    assert.equal(failure("Could not open.", error), `Could not open. ${describeError("not_found", "no such session")}`);
  });
});
