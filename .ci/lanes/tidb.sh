#!/usr/bin/env bash
# Lane: the conformance suite and the root package's race suite (.ci/suites)
# against TiDB, whose transactions differ from MySQL's: no RETURNING (the
# paths that insert and then read back), no SERIALIZABLE, no FOR SHARE,
# pessimistic row locks by default and optimistic write conflicts (9007) on
# request, a cluster-wide GET_LOCK.
#
# .ci/tidb builds tidb-server from tools/tidb once per pinned version
# (about 4 minutes; cached outside the repository) and starts it on
# 127.0.0.1:4000. The tests run with RACEFREE_ENGINES=mysql and
# RACEFREE_MYSQL_DSN pointing at TiDB, so the PostgreSQL, SQLite and Galera
# cases skip here (the main test command covers them) and an unreachable
# TiDB fails. Under .ci/run the suites wait for their turn (tests_turn,
# .ci/schedule): starved of CPU beside the main test command, TiDB's
# embedded store gave up pessimistic locks past racefree's retry budget. A
# server this lane started is stopped at the end (it holds about 1.7 GB);
# one that was already running is left alone.
#
# Run it alone: bash .ci/lanes/tidb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=true

if ! bash .ci/tidb status; then
	trap 'bash .ci/tidb stop' EXIT
fi
start=$SECONDS
line=$(bash .ci/tidb start | tail -1)
export "${line?}"
echo "== TiDB ready in $((SECONDS - start))s: $RACEFREE_TIDB_DSN"

# shellcheck source=../suites
source .ci/suites
tests_turn
export RACEFREE_ENGINES=mysql RACEFREE_MYSQL_DSN=$RACEFREE_TIDB_DSN
start=$SECONDS
rc=0
run_suites 12m || rc=$?
echo "== TiDB suites: $((SECONDS - start))s"
exit "$rc"
