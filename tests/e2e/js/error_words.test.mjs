// How a wait reads on the page: a 429's Retry-After in the error's words (app/web/static/api.js)
// and in the sign-in form's (app/web/static/wait.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { withWait } from "../../../app/web/static/api.js";
import { inTime } from "../../../app/web/static/wait.js";

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

describe("withWait", () => {
  it("ends the server's text as a sentence and adds the wait", () => {
    assert.equal(
      withWait("too many failed sign-ins: try again later", 30),
      "too many failed sign-ins: try again later. Try again in 30 s.",
    );
    assert.equal(withWait("Slow down.", 120), "Slow down. Try again in 2 min.");
  });
  it("leaves a text without a wait as it was", () => {
    assert.equal(withWait("no such session", null), "no such session");
  });
});
