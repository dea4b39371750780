#!/usr/bin/env bash
# Lane: the soak tests (build tag soak), bounded to a few minutes: the lab's
# full-size claims with a short run per strategy, and the chaos soak — kill
# on every engine, cuts on PostgreSQL and MariaDB. RACEFREE_SOAK_DURATION
# sets the run per strategy (the untagged default is 5s).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export CI=${CI:-true}
export RACEFREE_SOAK_DURATION=${RACEFREE_SOAK_DURATION:-2s}
# shellcheck source=../schedule
source .ci/schedule
tests_turn
go test -tags soak -run 'TestSoak' -count=1 -timeout 10m ./cmd/racefree
