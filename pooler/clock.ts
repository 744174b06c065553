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

/** The longest delay Node's timers take (24.8 days): a longer one fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A configured duration as a timer can wait it: PgBouncer takes any, and past 24.8 days the bound
 * is 24.8 days, as good as none, where Node would fire at once (a login cut after 1 ms).
 */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
