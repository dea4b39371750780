package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

// The lab across the nodes of a Galera cluster: GET_LOCK (the advisory
// strategy) excludes only its own node, so workers on different nodes
// insert duplicates; racefree's LockNamed and GetOrCreate, certified
// cluster-wide, do not. The invariant is checked once for the cluster.
func TestLab_GaleraNodes(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	testdb.Watchdog(t, 4*time.Minute)
	args := []string{"--dsn", strings.Join(dsns, ","), "--workers", "6", "--procs", "3", "--duration", "2s", "--scenario", "goc"}
	rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "advisory,namedlock,racefree"})...)
	for _, r := range rs {
		if r.Nodes != len(dsns) {
			t.Errorf("%s: nodes = %d, want %d", r.Strategy, r.Nodes, len(dsns))
		}
	}
	showsRace(t, args, rs["advisory"], "duplicates across nodes", func(r lab.Result) bool { return *r.Duplicates > 0 && !r.InvariantOK })
	for _, s := range []string{"namedlock", "racefree"} {
		if r := rs[s]; !r.InvariantOK || *r.Duplicates != 0 {
			t.Errorf("%s across nodes: %s; errors %v", s, r.Invariant, r.ErrorSamples)
		}
	}
}
