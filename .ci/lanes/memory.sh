#!/usr/bin/env bash
# Lane: the memory tests of the root package (memory_test.go), which open
# and close 10,000 databases and call ForgetSchema 10,000 times, and check
# that the live heap comes back to where it started. They are built without
# the race detector (build tag !race), so the main test command, which runs
# with -race, leaves them out; this lane runs them alone, in about 15 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=${CI:-true}
# shellcheck source=../schedule
source .ci/schedule
tests_turn
go test -count=1 -timeout 10m -run '^TestMemory' -v . | grep -v '^=== RUN'
