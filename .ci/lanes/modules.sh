#!/usr/bin/env bash
# Lane: the Go modules that live beside the core module so that it never
# depends on them (gormrf: GORM; examples/sqlx: sqlx), each tested with
# `go test -race ./...` under CI=true against the same servers as the core
# (RACEFREE_POSTGRES_DSN, RACEFREE_MYSQL_DSN, or the defaults). An
# unreachable server fails these tests, never skips them. Every module
# found is tested, so a new one is covered the day it lands. Then the
# racefreevet analyzer runs over the repository's own examples, where it
# must find nothing.
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
# shellcheck source=../schedule
source .ci/schedule
tests_turn
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

# racefreevet (docs/getorcreate.md) over what users copy: examples/ (the
# core module's and the modules of their own, tests included), the
# runnable Examples that README.md's code comes from (example*_test.go),
# and the core module's code. The core's other tests are left out: they
# hand racefree wrong row types on purpose, to test its run-time errors.
echo "== racefreevet over the examples"
vetdir=$(mktemp -d)
trap 'rm -rf "$vetdir"' EXIT
(cd racefreevet && go build -o "$vetdir/racefreevet" ./cmd/racefreevet)
vet() { # vet DIR ARGS...: run racefreevet in DIR; its findings (exit 3) or failure fail the lane
	local dir=$1; shift
	if ! (cd "$dir" && "$vetdir/racefreevet" "$@"); then
		echo "== racefreevet $* in $dir: FAILED" >&2
		failed=1
	fi
}
vet . -test=false ./...
vet . ./examples/...
for m in $(git ls-files 'examples/*go.mod' | xargs -n1 dirname); do
	vet "$m" ./...
done
# The root package's tests with the Examples: only findings in
# example*_test.go count. Exit 3 means findings; anything else but 0 is
# a failure to load.
rc=0
"$vetdir/racefreevet" . >"$vetdir/root.out" 2>&1 || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
	cat "$vetdir/root.out" >&2
	failed=1
elif grep '/example[^/]*_test\.go:' "$vetdir/root.out" >&2; then
	echo "== racefreevet: the runnable Examples give racefree a row type it refuses" >&2
	failed=1
fi
exit "$failed"
