#!/usr/bin/env bash
# Lane: the Go modules that live beside the core module so that it never
# depends on them (gormrf: GORM; examples/sqlx: sqlx), each tested with
# `go test -race ./...` under CI=true against the same servers as the core
# (RACEFREE_POSTGRES_DSN, RACEFREE_MYSQL_DSN, or the defaults). An
# unreachable server fails these tests, never skips them. Every module
# found is tested, so a new one is covered the day it lands.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=true

# .ci/run starts PostgreSQL and MariaDB before the lanes; wait for them in
# case this lane runs alone right after they were started.
for _ in $(seq 60); do
	pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && mariadb-admin ping >/dev/null 2>&1 && break
	sleep 1
done

# e2e has a lane of its own (browser.sh), which installs Chromium first.
modules=$(git ls-files '*go.mod' | xargs -n1 dirname | grep -vx '.' | grep -vx 'e2e' | sort)
if [ -z "$modules" ]; then
	echo "no module besides the core: nothing to test" >&2
	exit 1
fi
failed=0
for m in $modules; do
	echo "== $m: go test -race ./..."
	if ! (cd "$m" && go test -race -count=1 -timeout 15m ./...); then
		echo "== $m: FAILED" >&2
		failed=1
	fi
done
exit "$failed"
