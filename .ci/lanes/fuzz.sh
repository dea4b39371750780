#!/usr/bin/env bash
# Lane: run every fuzz target briefly beyond its committed seed corpus
# (the seeds themselves run in the main test command). A failure leaves the
# input that broke it under the package's testdata/fuzz, printed below.
# FuzzGetOrCreate_Values needs PostgreSQL and MariaDB, which .ci/run has
# started before the lanes; under CI=true it fails if they are unreachable.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=${CI:-true}
fuzztime=${RACEFREE_FUZZTIME:-10s}
# shellcheck source=../schedule
source .ci/schedule
tests_turn

targets=(
	"FuzzQuote ./dialect/pgdialect"
	"FuzzQuote ./dialect/mysqldialect"
	"FuzzQuote ./dialect/sqlitedialect"
	"FuzzDriverDSN ./dialect/sqlitedialect"
	"FuzzParseDSN ./dialect/mysqldialect"
	"FuzzOpen ."
	"FuzzGetOrCreate_Values ."
)
failed=0
for t in "${targets[@]}"; do
	read -r name pkg <<<"$t"
	echo "== $name ($pkg), $fuzztime"
	# -fuzzminimizetime bounds the minimisation of new inputs, which for a
	# 64 KB value across three engines would otherwise take minutes.
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5x "$pkg"; then
		failed=1
		git status --porcelain -- '*testdata/fuzz*' || true
	fi
done
exit "$failed"
