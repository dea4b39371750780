package lab

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one strategy's run, merged over every process and checked
// against the database. It is what `racefree lab --json` prints, one object
// per line.
type Result struct {
	Scenario      string            `json:"scenario"`
	Strategy      string            `json:"strategy"`
	Engine        string            `json:"engine"`
	Server        string            `json:"server"`
	Workers       int               `json:"workers"`
	Procs         int               `json:"procs"`
	Keys          int               `json:"keys"`
	UniqueIndex   bool              `json:"unique_index"`
	DurationS     float64           `json:"duration_s"`
	Ops           int64             `json:"ops"`
	OpsPerSec     float64           `json:"ops_per_sec"`
	P50ms         float64           `json:"p50_ms"`
	P99ms         float64           `json:"p99_ms"`
	Errors        int64             `json:"errors"`
	ErrorsByClass map[string]int64  `json:"errors_by_class"`
	ErrorSamples  map[string]string `json:"error_samples,omitempty"`
	Duplicates    *int64            `json:"duplicates,omitempty"`
	Drift         *int64            `json:"drift,omitempty"`
	// RowCount is the number of rows (goc, m2m) or the sum held (transfer:
	// money, counter: the counts) after the run.
	RowCount    int64  `json:"row_count"`
	InvariantOK bool   `json:"invariant_ok"`
	Invariant   string `json:"invariant"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// NewResult combines a run's merged measurements and its verdict.
func NewResult(spec *Spec, engine, server string, workers, procs int, p Part, v Verdict) Result {
	r := Result{
		Scenario: spec.Scenario, Strategy: spec.Strategy, Engine: engine, Server: server,
		Workers: workers, Procs: procs, Keys: spec.Keys, UniqueIndex: HasUnique(spec),
		DurationS: p.Elapsed.Seconds(), Ops: p.Ops,
		P50ms: ms(p.Hist.Quantile(0.50)), P99ms: ms(p.Hist.Quantile(0.99)),
		Errors: p.ErrorCount(), ErrorsByClass: map[string]int64{}, ErrorSamples: p.Samples,
		Duplicates: v.Duplicates, Drift: v.Drift, RowCount: v.Rows, InvariantOK: v.OK, Invariant: v.Words,
		Interrupted: p.Interrupted,
	}
	maps.Copy(r.ErrorsByClass, p.Errors)
	if p.Elapsed > 0 {
		r.OpsPerSec = float64(p.Ops) / p.Elapsed.Seconds()
	}
	return r
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// ErrorsText is the errors in words: "12 (deadlock 10, busy 2)".
func (r Result) ErrorsText() string {
	if r.Errors == 0 {
		return "0"
	}
	classes := slices.Sorted(maps.Keys(r.ErrorsByClass))
	parts := make([]string, 0, len(classes))
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %d", c, r.ErrorsByClass[c]))
	}
	return fmt.Sprintf("%d (%s)", r.Errors, strings.Join(parts, ", "))
}

// Approach says what the strategy does in the scenario.
func (r Result) Approach() string { return Describe(r.Scenario, r.Strategy) }

// FigureName names the invariant's figure of a scenario.
func FigureName(scenario string) string {
	if scenario == "goc" || scenario == "m2m" {
		return "duplicates"
	}
	return "drift"
}

// Figure is the invariant's figure as text.
func (r Result) Figure() string {
	switch {
	case r.Duplicates != nil:
		return fmt.Sprint(*r.Duplicates)
	case r.Drift != nil:
		return fmt.Sprintf("%+d", *r.Drift)
	}
	return "?"
}

// Verdict is "ok" or "BROKEN", with "(interrupted)" when the run was cut.
func (r Result) Verdict() string {
	s := "BROKEN"
	if r.InvariantOK {
		s = "ok"
	}
	if r.Interrupted {
		s += " (interrupted)"
	}
	return s
}

// WriteTable writes results as an aligned table, one row per strategy.
func WriteTable(w io.Writer, rs []Result) error {
	if len(rs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "strategy\tops/s\tp50 ms\tp99 ms\terrors\t%s\tinvariant\n", FigureName(rs[0].Scenario))
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\n",
			r.Strategy, r.OpsPerSec, r.P50ms, r.P99ms, r.ErrorsText(), r.Figure(), r.Verdict())
	}
	return tw.Flush()
}
