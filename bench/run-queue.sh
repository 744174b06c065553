#!/usr/bin/env bash
# Where a pooler's time goes under pgbench: on a CPU, waiting for one (runnable, on the run queue), or
# asleep, per transaction, from /proc/<pid>/schedstat. A pooler that is never asleep is the bottleneck,
# and its TPS is the CPU share the scheduler gives it divided by its CPU per transaction.
#
#   PGPASSWORD=… bench/run-queue.sh <pooler pid> <pooler port> [pgbench options, default -S -c 50 -j 2 -T 8]
set -euo pipefail
pid=$1 port=$2
shift 2
[ $# -gt 0 ] || set -- -S -c 50 -j 2 -T 8
read -r cpu0 wait0 _ <"/proc/$pid/schedstat"
t0=$(date +%s%N)
out=$(pgbench -h 127.0.0.1 -p "$port" -n "$@" 2>&1) || { echo "$out" >&2; exit 1; }
read -r cpu1 wait1 _ <"/proc/$pid/schedstat"
t1=$(date +%s%N)
xacts=$(grep -oP 'actually processed: \K[0-9]+' <<<"$out")
wall=$((t1 - t0)) cpu=$((cpu1 - cpu0)) wait=$((wait1 - wait0))
echo "pid $pid: $xacts transactions; per transaction $((cpu / xacts / 1000)) µs on a CPU, $((wait / xacts / 1000)) µs waiting for one;" \
  "of the wall time $((cpu * 100 / wall)) % on a CPU, $((wait * 100 / wall)) % runnable and waiting, $(((wall - cpu - wait) * 100 / wall)) % asleep"
