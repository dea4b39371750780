#!/usr/bin/env bash
# Lane: `racefree bench --quick --json` as a smoke run on SQLite (embedded:
# nothing to install or start). Builds the binary, runs the quick bench with
# its HTML report, then checks the JSON with internal/bench's TestReportFile,
# which reads it field by field: every figure present, every number finite,
# every ratio and throughput positive, every case measured, both scaling
# axes there. A quick run takes well under a minute on a quiet 2-core
# machine; the lane fails past 180 s (CI runs it beside the whole test
# suite) and kills a run that hangs.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=${CI:-true}

# shellcheck source=../schedule
source .ci/schedule
tests_turn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/racefree" ./cmd/racefree
start=$SECONDS
timeout 300 "$work/racefree" bench --quick --json --html "$work/bench.html" >"$work/bench.json"
secs=$((SECONDS - start))
echo "racefree bench --quick --json: ${secs}s"

go test -count=1 -v -timeout 5m -run '^TestReportFile$' ./internal/bench -args -report "$work/bench.json"

if ! grep -q '<svg' "$work/bench.html"; then
	echo "the HTML report has no chart" >&2
	exit 1
fi
if [ "$secs" -gt 180 ]; then
	echo "racefree bench --quick took ${secs}s; it should take well under a minute" >&2
	exit 1
fi
