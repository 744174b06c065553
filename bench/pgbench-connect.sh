#!/usr/bin/env bash
# pgbench for the shared harness's `PGBENCH`, in the connection-per-transaction pass of `npm run bench`
# (PGBENCH_OPTS=-C). With -C pgbench reports one TPS, labelled "including reconnection times", which
# is the figure that pass is about; the harness only reads the label of runs without -C, so the line
# is relabelled for it. Everything else goes through unchanged, and so does pgbench's exit status.
set -o pipefail
pgbench "$@" | sed -u 's/^\(tps = [0-9.]*\) (including reconnection times)/\1 (without initial connection time)/'
