package lab_test

import (
	"os"

	"github.com/racefree/racefree/internal/lab"
)

// The lab prints one row per strategy: throughput, latency, the errors
// callers saw, and what the database held afterwards.
func ExampleWriteTable() {
	dup0, dup37 := int64(0), int64(37)
	lab.WriteTable(os.Stdout, []lab.Result{
		{Scenario: "goc", Strategy: "naive", OpsPerSec: 23220, P50ms: 0.42, P99ms: 35.21, Duplicates: &dup37},
		{Scenario: "goc", Strategy: "catch", OpsPerSec: 20903, P50ms: 0.51, P99ms: 40.44, Duplicates: &dup0, InvariantOK: true,
			Errors: 2, ErrorsByClass: map[string]int64{"deadlock": 2}},
	})
	// Output:
	// strategy  ops/s  p50 ms  p99 ms  errors          duplicates  invariant
	// naive     23220  0.42    35.21   0               37          BROKEN
	// catch     20903  0.51    40.44   2 (deadlock 2)  0           ok
}
