package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

func TestCollapses(t *testing.T) {
	tests := []struct {
		curve []float64
		want  bool
	}{
		{[]float64{100, 180, 200, 190, 150}, false}, // flattens and sags: no collapse
		{[]float64{100, 180, 200, 90}, true},        // below half the peak
		{[]float64{100, 40, 100}, true},             // a dip past an early peak
		{[]float64{100}, false},
		{[]float64{50, 100, 200}, false}, // still rising
		{nil, false},
	}
	for _, tc := range tests {
		if got := Collapses(tc.curve); got != tc.want {
			t.Errorf("Collapses(%v) = %v, want %v", tc.curve, got, tc.want)
		}
	}
}

// fakeLauncher answers each point with parts whose throughput follows
// rate(side, callers), one part per process, and records the calls.
type fakeLauncher struct {
	rate  func(s Side, callers int) float64
	calls []string
	fail  string // "side procs×goroutines" to fail
}

func (f *fakeLauncher) launch(_ context.Context, s Side, p ScalePoint) ([]lab.Part, error) {
	key := fmt.Sprintf("%s %d×%d", s, p.Procs, p.Goroutines)
	f.calls = append(f.calls, key)
	if key == f.fail {
		return nil, errors.New("worker process 0: too many connections")
	}
	parts := make([]lab.Part, p.Procs)
	perProc := f.rate(s, p.Callers()) / float64(p.Procs)
	for i := range parts {
		parts[i].Elapsed = time.Second
		parts[i].OK = int64(perProc)
		parts[i].Ops = parts[i].OK
		parts[i].Hist.Record(time.Millisecond * time.Duration(p.Callers()))
	}
	return parts, nil
}

func TestScale(t *testing.T) {
	f := &fakeLauncher{rate: func(s Side, callers int) float64 {
		if s == Racefree && callers >= 64 {
			return 120 // racefree collapses at 64 callers
		}
		return 1000 * float64(min(callers, 4))
	}}
	var steps int
	cfg := ScaleConfig{Procs: []int{1, 2, 4}, Goroutines: []int{1, 16, 64}, Step: func(string, ScalePoint, Side) { steps++ }}
	res := Scale(context.Background(), "hit", cfg, f.launch)
	if len(res) != 2 || res[0].Axis != AxisProcesses || res[1].Axis != AxisGoroutines {
		t.Fatalf("results %+v", res)
	}
	// 1×1 is measured once and shared; which side goes first alternates.
	want := []string{
		"raw 1×1", "racefree 1×1", "racefree 2×1", "raw 2×1", "raw 4×1", "racefree 4×1",
		"racefree 1×16", "raw 1×16", "raw 1×64", "racefree 1×64",
	}
	if strings.Join(f.calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("launches\n %v\nwant\n %v", f.calls, want)
	}
	if steps != cfg.Steps() || steps != len(want) {
		t.Errorf("%d steps, Steps() = %d, want %d", steps, cfg.Steps(), len(want))
	}
	procs, gors := res[0], res[1]
	if len(procs.Points) != 3 || len(gors.Points) != 3 || gors.Points[0] != procs.Points[0] {
		t.Fatalf("points %+v / %+v", procs.Points, gors.Points)
	}
	if p := procs.Points[2]; p.Procs != 4 || p.Goroutines != 1 || p.Raw.OpsPerSec != 4000 || p.Ratio != 1 {
		t.Errorf("4 processes: %+v", p)
	}
	if procs.Collapsed || procs.RawCollapsed || !strings.HasPrefix(procs.Verdict, "no collapse") {
		t.Errorf("processes axis: %+v", procs)
	}
	if !gors.Collapsed || gors.RawCollapsed || !strings.Contains(gors.Verdict, "racefree collapses and raw does not") ||
		!strings.Contains(gors.Verdict, "at 64 goroutines racefree keeps 3 %") {
		t.Errorf("goroutines axis: collapsed %v, raw %v, verdict %q", gors.Collapsed, gors.RawCollapsed, gors.Verdict)
	}
	if p := gors.Points[2]; p.Racefree.P99us < 64000 || p.Racefree.P99us > 64100 {
		t.Errorf("p99 at 64 callers %v µs, want 64000", p.Racefree.P99us)
	}
}

func TestScale_FailedPointEndsItsAxis(t *testing.T) {
	f := &fakeLauncher{rate: func(Side, int) float64 { return 100 }, fail: "raw 4×1"}
	res := Scale(context.Background(), "hit", ScaleConfig{Procs: []int{1, 4, 16}, Goroutines: []int{1, 8}}, f.launch)
	if len(res) != 2 {
		t.Fatalf("results %+v", res)
	}
	if res[0].Error == "" || !strings.Contains(res[0].Error, "too many connections") || len(res[0].Points) != 1 {
		t.Errorf("processes axis: %+v", res[0])
	}
	if res[1].Error != "" || len(res[1].Points) != 2 || res[1].Verdict == "" {
		t.Errorf("goroutines axis must still run: %+v", res[1])
	}
	if err := Validate(&Report{Schema: Schema, Engine: "x", Server: "x", Cases: []CaseResult{goodCase()}, Scaling: res}); err == nil ||
		!strings.Contains(err.Error(), "scaling hit/processes failed") {
		t.Errorf("Validate = %v, want the failed axis named", err)
	}
}

// With ProcGoroutines every process of the processes axis runs that many
// goroutines: a fleet of busy processes. A point the goroutines axis has
// too (1 process × as many goroutines) is measured once.
func TestScale_ProcGoroutines(t *testing.T) {
	f := &fakeLauncher{rate: func(_ Side, callers int) float64 { return 100 * float64(callers) }}
	cfg := ScaleConfig{Procs: []int{1, 4}, Goroutines: []int{16}, ProcGoroutines: 16}
	res := Scale(context.Background(), "hit", cfg, f.launch)
	want := []string{"raw 1×16", "racefree 1×16", "racefree 4×16", "raw 4×16"}
	if strings.Join(f.calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("launches\n %v\nwant\n %v", f.calls, want)
	}
	if cfg.Steps() != len(want) {
		t.Errorf("Steps() = %d, want %d", cfg.Steps(), len(want))
	}
	if len(res) != 2 || len(res[0].Points) != 2 || res[0].Points[1].Procs != 4 || res[0].Points[1].Goroutines != 16 ||
		res[0].Points[1].Raw.OpsPerSec != 6400 {
		t.Fatalf("results %+v", res)
	}
}
