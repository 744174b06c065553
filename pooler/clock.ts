// The clock of what the pooler times per connection (connect, last activity, start of a wait):
// whole milliseconds since the process started, on the monotonic clock. Whole and small, V8 keeps
// them inside each connection object, where a Date.now() is a double in a 16-byte box of its own
// per field, and idle clients by the thousand add up. Past 24 days of uptime they outgrow that
// representation and V8 boxes them again: more memory, the same results.

/** Never 0, which marks a time that is not set (waitStart). */
export function now(): number {
  return Math.ceil(performance.now());
}

/** A `now()` reading as milliseconds since the epoch, for display. */
export function wallClock(t: number): number {
  return performance.timeOrigin + t;
}
