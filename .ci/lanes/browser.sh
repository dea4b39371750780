#!/usr/bin/env bash
# Lane: `racefree serve` end to end in a real headless browser. Installs
# Debian's chromium when it is missing, then runs the e2e module's tests
# (e2e/, a Go module of its own so that the core module never depends on
# chromedp) with CI=true: on SQLite, PostgreSQL and MariaDB, each of which
# fails rather than skips when unreachable, as does a missing browser.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '== browser lane: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=true

if [ -z "${RACEFREE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
	log "installing chromium"
	# An install cut off earlier (a run killed mid-way) leaves dpkg refusing
	# every other until it is finished.
	as_root dpkg --configure -a >/dev/null 2>&1 || true
	# Other lanes may be installing at the same moment: wait for dpkg's lock.
	as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null
fi
"${RACEFREE_CHROMIUM:-chromium}" --version 2>/dev/null | head -1 || true

# .ci/run starts PostgreSQL and MariaDB before the lanes; when this lane
# runs on its own, start them if they are installed and down. The tests
# fail with the DSN to set when a server is still unreachable.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
	as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk '{print $1; exit}')" main start || true
fi
if command -v mariadb-admin >/dev/null && ! mariadb-admin ping >/dev/null 2>&1; then
	as_root start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd || echo /usr/sbin/mariadbd)" || true
	for _ in $(seq 30); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 1; done
fi

# shellcheck source=../schedule
source .ci/schedule
tests_turn
log "go test (e2e)"
cd e2e
go test -count=1 -timeout 15m -v ./...
