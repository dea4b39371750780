#!/usr/bin/env bash
# Lane: the last release tag installs with
# `go install github.com/racefree/racefree/cmd/racefree@TAG` and reports its
# version (.ci/installcheck). The exported API check against that tag runs
# in .ci/run itself (.ci/apidiff), since it takes seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CI=true
bash .ci/installcheck
