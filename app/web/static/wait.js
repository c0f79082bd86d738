// How long to wait, in words: shared by the API client (a 429's text) and the pages.

/** "in 40 s", "in 5 min" (rounded up), or "later" when the server named no time. */
export function inTime(seconds) {
  if (!seconds) return "later";
  return seconds < 60 ? `in ${seconds} s` : `in ${Math.ceil(seconds / 60)} min`;
}
