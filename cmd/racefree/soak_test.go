//go:build soak

package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

// The full-size claim, 4 processes × 16 goroutines × 5 s per
// strategy on every engine (about 4 minutes):
//
//	go test -tags soak -run TestSoak -timeout 30m ./cmd/racefree
func TestSoak_FullSize(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 15*time.Minute)
		common := []string{"--dsn", e.DSN(t), "--workers", "16", "--procs", "4", "--duration", "5s"}
		dups := func(r lab.Result) bool { return *r.Duplicates > 0 }

		args := slices.Concat(common, []string{"--scenario", "goc"})
		rs := labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,mutex,catch,racefree"})...)
		showsRace(t, args, rs["naive"], "duplicate rows", dups)
		showsRace(t, args, rs["mutex"], "duplicate rows across processes", dups)
		for _, s := range []string{"catch", "racefree"} {
			if r := rs[s]; *r.Duplicates != 0 || r.Errors != 0 {
				t.Errorf("goc %s: %d duplicates, errors %v", s, *r.Duplicates, r.ErrorSamples)
			}
		}

		args = slices.Concat(common, []string{"--scenario", "transfer"})
		rs = labJSON(t, context.Background(), slices.Concat(args, []string{"--strategy", "naive,mutex,racefree"})...)
		showsRace(t, args, rs["naive"], "drift", func(r lab.Result) bool { return *r.Drift != 0 })
		showsRace(t, args, rs["mutex"], "drift across processes", func(r lab.Result) bool { return *r.Drift != 0 })
		if r := rs["racefree"]; *r.Drift != 0 || r.Errors != 0 || r.ErrorsByClass["deadlock"] != 0 {
			t.Errorf("transfer racefree: drift %d, errors %v", *r.Drift, r.ErrorSamples)
		}
	})
}
