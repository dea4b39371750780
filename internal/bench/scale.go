package bench

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/internal/lab"
)

// CollapseFraction: a throughput curve collapses when, past its peak, it
// falls below this fraction of the peak. More callers than the machine can
// serve flatten a healthy curve; they do not halve it.
const CollapseFraction = 0.5

// Default scaling levels: 1 to 16 OS processes (one goroutine each) and
// 1 to 256 goroutines (in one process).
var (
	DefaultProcs      = []int{1, 2, 4, 8, 16}
	DefaultGoroutines = []int{1, 4, 16, 64, 256}
)

// The two axes of the scaling phase.
const (
	AxisProcesses  = "processes"
	AxisGoroutines = "goroutines"
)

// Launcher runs one side of a case at one point: point.Procs worker
// processes with point.Goroutines goroutines each, all starting together,
// and returns each process's measurements.
type Launcher func(ctx context.Context, side Side, point ScalePoint) ([]lab.Part, error)

// ScaleConfig lists the levels of each axis.
type ScaleConfig struct {
	Procs      []int // processes, ProcGoroutines goroutines each
	Goroutines []int // goroutines, in one process
	// ProcGoroutines is how many goroutines each process of the processes
	// axis runs; 0 means 1. More than one measures a service of several
	// processes, each with concurrent callers — what coalescing, which
	// shares trips only within a process, gives such a fleet.
	ProcGoroutines int
	// Step, if set, is called after each side of each point is measured.
	Step func(axis string, point ScalePoint, side Side)
}

// Points returns the points of both axes in the order Scale measures
// them.
func (cfg ScaleConfig) Points() (axes []string, points [][]ScalePoint) {
	var procs, gor []ScalePoint
	for _, p := range cfg.Procs {
		procs = append(procs, ScalePoint{Procs: p, Goroutines: max(1, cfg.ProcGoroutines)})
	}
	for _, g := range cfg.Goroutines {
		gor = append(gor, ScalePoint{Procs: 1, Goroutines: g})
	}
	if len(procs) > 0 {
		axes, points = append(axes, AxisProcesses), append(points, procs)
	}
	if len(gor) > 0 {
		axes, points = append(axes, AxisGoroutines), append(points, gor)
	}
	return axes, points
}

// Steps is the number of times Scale calls cfg.Step.
func (cfg ScaleConfig) Steps() int {
	seen := map[[2]int]bool{}
	_, pts := cfg.Points()
	for _, ps := range pts {
		for _, p := range ps {
			seen[[2]int{p.Procs, p.Goroutines}] = true
		}
	}
	return 2 * len(seen)
}

// Scale measures the case along each axis: at every point the raw side and
// racefree's one after the other (which goes first alternates from point
// to point), each through launch. A point both axes share (1 process × 1
// goroutine) is measured once. A failed point ends its axis with Error set;
// the other axis still runs.
func Scale(ctx context.Context, caseName string, cfg ScaleConfig, launch Launcher) []ScaleResult {
	axes, pts := cfg.Points()
	done := map[[2]int]ScalePoint{}
	var out []ScaleResult
	n := 0
	for ai, axis := range axes {
		res := ScaleResult{Case: caseName, Axis: axis}
		for _, p := range pts[ai] {
			if ctx.Err() != nil {
				break
			}
			key := [2]int{p.Procs, p.Goroutines}
			if m, ok := done[key]; ok {
				res.Points = append(res.Points, m)
				continue
			}
			order := []Side{Raw, Racefree}
			if n%2 == 1 {
				order = []Side{Racefree, Raw}
			}
			n++
			var err error
			for _, s := range order {
				var parts []lab.Part
				parts, err = launch(ctx, s, p)
				if err != nil {
					err = fmt.Errorf("%s side at %d×%d: %w", s, p.Procs, p.Goroutines, err)
					break
				}
				st := ParallelStats(parts...)
				if st.OK == 0 {
					err = fmt.Errorf("%s side at %d×%d completed no call%s", s, p.Procs, p.Goroutines, errorSample(st))
					break
				}
				if s == Raw {
					p.Raw = st
				} else {
					p.Racefree = st
				}
				if cfg.Step != nil {
					cfg.Step(axis, p, s)
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					res.Error = err.Error()
				}
				break
			}
			p.Ratio = p.Racefree.OpsPerSec / p.Raw.OpsPerSec
			done[key] = p
			res.Points = append(res.Points, p)
		}
		if len(res.Points) > 0 && res.Error == "" {
			res.Collapsed, res.RawCollapsed, res.Verdict = collapseVerdict(axis, res.Points)
		}
		if len(res.Points) > 0 || res.Error != "" {
			out = append(out, res)
		}
	}
	return out
}

func errorSample(s SideStats) string {
	if s.ErrorSample == "" {
		return ""
	}
	return fmt.Sprintf(" (%d failed; %s)", s.Errors, s.ErrorSample)
}

// Collapses reports whether a throughput curve, past its peak, falls
// below CollapseFraction of the peak.
func Collapses(throughput []float64) bool {
	peak, at := 0.0, -1
	for i, v := range throughput {
		if v > peak {
			peak, at = v, i
		}
	}
	for _, v := range throughput[at+1:] {
		if v < CollapseFraction*peak {
			return true
		}
	}
	return false
}

// keptOfPeak is the last value's share of the curve's peak.
func keptOfPeak(throughput []float64) float64 {
	peak := 0.0
	for _, v := range throughput {
		peak = max(peak, v)
	}
	if peak == 0 {
		return 0
	}
	return throughput[len(throughput)-1] / peak
}

func collapseVerdict(axis string, pts []ScalePoint) (rf, raw bool, verdict string) {
	var rft, rawt []float64
	for _, p := range pts {
		rft, rawt = append(rft, p.Racefree.OpsPerSec), append(rawt, p.Raw.OpsPerSec)
	}
	rf, raw = Collapses(rft), Collapses(rawt)
	last := pts[len(pts)-1]
	n := last.Goroutines
	if axis == AxisProcesses {
		n = last.Procs
	}
	at := fmt.Sprintf("%d %s", n, axis)
	if n == 1 {
		at = map[string]string{AxisProcesses: "1 process", AxisGoroutines: "1 goroutine"}[axis]
	}
	kept := fmt.Sprintf("at %s racefree keeps %.0f %% of its peak throughput (raw %.0f %%)", at, 100*keptOfPeak(rft), 100*keptOfPeak(rawt))
	switch {
	case rf && raw:
		verdict = "both collapse, so the engine or the machine is the limit: " + kept
	case rf:
		verdict = "racefree collapses and raw does not: " + kept
	case raw:
		verdict = "no collapse of racefree, though the raw side collapses: " + kept
	default:
		verdict = "no collapse: " + kept
	}
	return rf, raw, verdict
}
