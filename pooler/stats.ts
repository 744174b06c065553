// Per-pool counters with PgBouncer's meaning (SHOW STATS): totals since start, times in
// microseconds in the output (kept here in the unit they are measured in).
export class PoolStats {
  serverAssignments = 0;
  xactCount = 0;
  queryCount = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** Sums of durations, microseconds. */
  xactTimeUs = 0;
  queryTimeUs = 0;
  /** Sum of client wait times for a server, milliseconds. */
  waitTime = 0;
}
