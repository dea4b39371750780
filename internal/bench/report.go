package bench

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// Schema names the JSON layout of a Report. It changes only when a field
// changes meaning or goes away; new fields may be added under the same
// name. docs/bench.md documents every field.
const Schema = "racefree-bench/1"

// Report is everything one run of `racefree bench` measured. Its JSON field
// names are stable (see Schema).
type Report struct {
	Schema    string    `json:"schema"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Engine    string    `json:"engine"` // dialect family: postgres, mysql, sqlite
	Server    string    `json:"server"` // e.g. "PostgreSQL 15.19"
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	CPUs      int       `json:"cpus"`
	Settings  Settings  `json:"settings"`
	// Cases holds one result per case, in report order.
	Cases []CaseResult `json:"cases"`
	// Scaling holds one curve per scaled case and axis.
	Scaling []ScaleResult `json:"scaling"`
	// Interrupted reports a run stopped before its end: what it holds
	// was measured, but cases or points are missing.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Settings are the parameters of a run.
type Settings struct {
	Quick      bool    `json:"quick"`
	Rounds     int     `json:"rounds"`
	SegmentMS  float64 `json:"segment_ms"`
	WarmupMS   float64 `json:"warmup_ms"`
	Confidence float64 `json:"confidence"`
	Batch      int     `json:"batch"`
	Accounts   int     `json:"accounts"`
	// ScaleMS is how long each side runs at each scaling point.
	ScaleMS    float64 `json:"scale_ms"`
	Procs      []int   `json:"procs"`
	Goroutines []int   `json:"goroutines"`
	// ProcGoroutines is how many goroutines each process of the processes
	// axis ran.
	ProcGoroutines int `json:"proc_goroutines"`
	// Pool bounds each process's connection pool (see PoolSize).
	Pool int `json:"pool"`
}

// SideStats is what one side of a case did over all its segments (or one
// scaling point).
type SideStats struct {
	Calls int64 `json:"calls"`
	OK    int64 `json:"ok"`
	// Errors counts failed calls; ErrorSample is one of their messages.
	Errors      int64   `json:"errors"`
	ErrorSample string  `json:"error_sample,omitempty"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
}

// CaseResult is the ratio phase's result for one case.
type CaseResult struct {
	Name     string `json:"name"`
	Title    string `json:"title"`
	Racefree string `json:"racefree"`
	Raw      string `json:"raw"`
	RawSQL   string `json:"raw_sql,omitempty"`
	// Goroutines is how many goroutines called each side at once.
	Goroutines int `json:"goroutines"`
	// Ratio is racefree's throughput over raw's: the geometric mean of
	// RoundRatios. Above 1, racefree is faster.
	Ratio float64 `json:"ratio"`
	// RatioLo and RatioHi bound its confidence interval at Confidence.
	RatioLo     float64   `json:"ratio_lo"`
	RatioHi     float64   `json:"ratio_hi"`
	Confidence  float64   `json:"confidence"`
	RoundRatios []float64 `json:"round_ratios"`
	// RacefreeStats and RawStats hold each side's calls, throughput and
	// latency percentiles over all its segments.
	RacefreeStats SideStats `json:"racefree_stats"`
	RawStats      SideStats `json:"raw_stats"`
	Verdict       string    `json:"verdict"`
	// Skipped says why the engine cannot run the case; Error why it
	// failed. Either leaves the figures above empty.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Measured reports whether the case has figures.
func (c CaseResult) Measured() bool { return c.Skipped == "" && c.Error == "" }

// ScalePoint is one level of concurrency: Procs processes × Goroutines
// goroutines each.
type ScalePoint struct {
	Procs      int       `json:"procs"`
	Goroutines int       `json:"goroutines"`
	Racefree   SideStats `json:"racefree"`
	Raw        SideStats `json:"raw"`
	// Ratio is racefree's throughput over raw's at this point (one
	// measurement each: no interval).
	Ratio float64 `json:"ratio"`
}

// Callers is the number of concurrent callers at the point.
func (p ScalePoint) Callers() int { return p.Procs * p.Goroutines }

// ScaleResult is one case's throughput curve along one axis.
type ScaleResult struct {
	Case string `json:"case"`
	// Axis is "processes" (Settings.ProcGoroutines goroutines each) or
	// "goroutines" (in 1 process).
	Axis   string       `json:"axis"`
	Points []ScalePoint `json:"points"`
	// Collapsed reports that racefree's throughput fell, past its peak,
	// below CollapseFraction of that peak; RawCollapsed the same of the
	// raw side, for comparison.
	Collapsed    bool   `json:"collapsed"`
	RawCollapsed bool   `json:"raw_collapsed"`
	Verdict      string `json:"verdict"`
	Error        string `json:"error,omitempty"`
}

// SequentialStats sums segments that ran one after another: throughput is
// all their successful calls over all their time.
func SequentialStats(parts ...lab.Part) SideStats {
	var total lab.Part
	var elapsed time.Duration
	for _, p := range parts {
		total.Merge(p)
		elapsed += p.Elapsed
	}
	return statsOf(total, elapsed)
}

// ParallelStats sums the parts of processes that ran at the same time:
// throughput is all their successful calls over the longest one's time.
func ParallelStats(parts ...lab.Part) SideStats {
	var total lab.Part
	for _, p := range parts {
		total.Merge(p)
	}
	return statsOf(total, total.Elapsed)
}

func statsOf(p lab.Part, elapsed time.Duration) SideStats {
	s := SideStats{
		Calls: p.Ops, OK: p.OK, Errors: p.ErrorCount(),
		OpsPerSec: Throughput(p.OK, elapsed.Seconds()),
		P50us:     micros(p.Hist.Quantile(0.50)),
		P99us:     micros(p.Hist.Quantile(0.99)),
	}
	for c, m := range p.Samples {
		s.ErrorSample = c + ": " + m
		break
	}
	return s
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Validate checks that every figure of r is present and finite: each
// measured case has a positive ratio inside its positive interval, round
// ratios, and both sides' throughput and latency; each scaling curve has
// points with the same. Skipped cases pass; failed cases and curves do
// not. It returns every problem found, joined.
func Validate(r *Report) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Schema != Schema {
		bad("schema %q, want %q", r.Schema, Schema)
	}
	if r.Engine == "" || r.Server == "" {
		bad("engine or server missing")
	}
	if len(r.Cases) == 0 {
		bad("no cases")
	}
	measured := 0
	for _, c := range r.Cases {
		switch {
		case c.Skipped != "":
			continue
		case c.Error != "":
			bad("case %s failed: %s", c.Name, c.Error)
			continue
		}
		measured++
		if !positive(c.Ratio, c.RatioLo, c.RatioHi) || !(c.RatioLo <= c.Ratio && c.Ratio <= c.RatioHi) {
			bad("case %s: ratio %v not positive and finite inside [%v, %v]", c.Name, c.Ratio, c.RatioLo, c.RatioHi)
		}
		if len(c.RoundRatios) < 2 || !positive(c.RoundRatios...) {
			bad("case %s: round ratios %v", c.Name, c.RoundRatios)
		}
		errs = append(errs, validSide("case "+c.Name+" racefree", c.RacefreeStats), validSide("case "+c.Name+" raw", c.RawStats))
	}
	if len(r.Cases) > 0 && measured == 0 {
		bad("no case was measured")
	}
	for _, s := range r.Scaling {
		name := "scaling " + s.Case + "/" + s.Axis
		if s.Error != "" {
			bad("%s failed: %s", name, s.Error)
			continue
		}
		if len(s.Points) == 0 {
			bad("%s: no points", name)
		}
		for _, p := range s.Points {
			pn := fmt.Sprintf("%s at %d×%d", name, p.Procs, p.Goroutines)
			if p.Procs < 1 || p.Goroutines < 1 || !positive(p.Ratio) {
				bad("%s: ratio %v", pn, p.Ratio)
			}
			errs = append(errs, validSide(pn+" racefree", p.Racefree), validSide(pn+" raw", p.Raw))
		}
		if s.Verdict == "" {
			bad("%s: no verdict", name)
		}
	}
	return errors.Join(errs...)
}

func validSide(name string, s SideStats) error {
	if s.OK < 1 || s.Calls < s.OK || !positive(s.OpsPerSec, s.P50us, s.P99us) || s.P99us < s.P50us {
		return fmt.Errorf("%s: calls %d, ok %d, %v/s, p50 %v µs, p99 %v µs: a figure is missing or not finite", name, s.Calls, s.OK, s.OpsPerSec, s.P50us, s.P99us)
	}
	return nil
}

// positive reports whether every value is finite and above zero.
func positive(vs ...float64) bool {
	for _, v := range vs {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
