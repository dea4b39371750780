package lab

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racefree/racefree/dialect"
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

	// Nodes is the number of DSNs the workers were spread over.
	Nodes int `json:"nodes"`
	// Chaos is the --chaos value; Faults the faults injected, by kind.
	Chaos  string           `json:"chaos,omitempty"`
	Faults map[string]int64 `json:"faults,omitempty"`
	// RestartOutagesS holds how long the server was unreachable after each
	// restart, in seconds; RestartError why restarts stopped, if they did.
	RestartOutagesS []float64 `json:"restart_outages_s,omitempty"`
	RestartError    string    `json:"restart_error,omitempty"`
	// Deaths lists the worker processes that ended without reporting:
	// killed by the chaos, or dying on their own (a failure of the run).
	Deaths []Death `json:"deaths,omitempty"`
	// Events counts what the lab noted besides errors.
	Events map[string]int64 `json:"events,omitempty"`
	// Ambiguous counts the calls whose outcome their caller could not know,
	// and how the lab settled them.
	Ambiguous Ambiguity `json:"ambiguous"`
	// Ledger is the transfer ledger's verdict (racefree strategy).
	Ledger *LedgerVerdict `json:"ledger,omitempty"`
	// Leftovers is what the run left on the server(s) after every worker
	// ended; ConnsInUse the pooled connections the workers still had in
	// use when they stopped (leaked by the code under test).
	Leftovers  *Leftovers `json:"leftovers,omitempty"`
	ConnsInUse int        `json:"conns_in_use"`
}

// Ambiguity is the calls of a run whose effect their caller could not
// know.
type Ambiguity struct {
	// Calls is the total: errors of a class that leaves the outcome open
	// (connection lost mid-statement, COMMIT unanswered, canceled) and
	// calls in flight in a killed process.
	Calls int64 `json:"calls"`
	// CommitUnknown counts ErrCommitUnknown returned to callers.
	CommitUnknown int64 `json:"commit_unknown"`
	// InFlightKilled counts calls cut by the death of their process.
	InFlightKilled int64 `json:"in_flight_killed"`
	// How the transfer's unknown commits were settled through the ledger.
	Committed   int64 `json:"resolved_committed"`
	Retried     int64 `json:"resolved_not_committed_run_again"`
	RetryFailed int64 `json:"run_again_failed"`
	Unresolved  int64 `json:"unresolved"`
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
		Interrupted: p.Interrupted, Ledger: v.Ledger, Events: p.Events, ConnsInUse: p.ConnsInUse,
		Ambiguous: Ambiguity{
			Calls: v.Ambiguous, CommitUnknown: p.Errors[commitUnknownClass], InFlightKilled: p.InFlight,
			Committed: p.Events[EventUnknownCommitted], Retried: p.Events[EventUnknownRetried],
			RetryFailed: p.Events[EventUnknownRetryError], Unresolved: p.Events[EventUnknownUnresolved],
		},
	}
	maps.Copy(r.ErrorsByClass, p.Errors)
	if p.Elapsed > 0 {
		r.OpsPerSec = float64(p.Ops) / p.Elapsed.Seconds()
	}
	return r
}

// commitUnknownClass is the class name of ErrCommitUnknown in the tables.
var commitUnknownClass = dialect.ClassCommitUnknown.String()

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

// FaultCount is the number of faults injected.
func (r Result) FaultCount() int64 {
	var n int64
	for _, c := range r.Faults {
		n += c
	}
	return n
}

// FaultsText is the faults in words: "14 (cut 9, kill 5)".
func (r Result) FaultsText() string { return countsText(r.FaultCount(), r.Faults) }

func countsText(total int64, m map[string]int64) string {
	if total == 0 {
		return "0"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// UnexpectedDeaths counts worker processes that died on their own.
func (r Result) UnexpectedDeaths() int {
	n := 0
	for _, d := range r.Deaths {
		if !d.ByChaos {
			n++
		}
	}
	return n
}

// LeftText says what the run left behind: "0", or "2 sessions, 1 lock".
func (r Result) LeftText() string {
	var parts []string
	if l := r.Leftovers; l != nil && l.Sessions > 0 {
		parts = append(parts, fmt.Sprintf("%d sessions", l.Sessions))
	}
	if l := r.Leftovers; l != nil && l.Locks > 0 {
		parts = append(parts, fmt.Sprintf("%d locks", l.Locks))
	}
	if r.ConnsInUse > 0 {
		parts = append(parts, fmt.Sprintf("%d conns in use", r.ConnsInUse))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// chaotic reports whether the table needs the chaos columns.
func chaotic(rs []Result) bool {
	for _, r := range rs {
		if r.Chaos != "" || len(r.Deaths) > 0 {
			return true
		}
	}
	return false
}

// WriteTable writes results as an aligned table, one row per strategy.
// Runs with chaos or with dead workers get three more columns: faults
// injected, calls of unknown outcome, and what was left on the server.
func WriteTable(w io.Writer, rs []Result) error {
	if len(rs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	extra := chaotic(rs)
	if extra {
		fmt.Fprintf(tw, "strategy\tops/s\tp50 ms\tp99 ms\terrors\t%s\tfaults\tunknown\tleft\tinvariant\n", FigureName(rs[0].Scenario))
	} else {
		fmt.Fprintf(tw, "strategy\tops/s\tp50 ms\tp99 ms\terrors\t%s\tinvariant\n", FigureName(rs[0].Scenario))
	}
	for _, r := range rs {
		if extra {
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%d\t%d\t%s\t%s\n",
				r.Strategy, r.OpsPerSec, r.P50ms, r.P99ms, r.ErrorsText(), r.Figure(), r.FaultCount(), r.Ambiguous.Calls, r.LeftText(), r.Verdict())
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\n",
			r.Strategy, r.OpsPerSec, r.P50ms, r.P99ms, r.ErrorsText(), r.Figure(), r.Verdict())
	}
	return tw.Flush()
}

// WriteDetails writes, per result, what the table has no room for: the
// invariant in words, and with chaos the faults, the unknown outcomes and
// how they were settled, the dead workers and what was left behind.
func WriteDetails(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "  %-12s %s: %s\n", r.Strategy, r.Approach(), r.Invariant)
		if !chaotic([]Result{r}) {
			continue
		}
		ind := "               "
		if r.Chaos != "" {
			fmt.Fprintf(w, "%sfaults: %s\n", ind, r.FaultsText())
		}
		if len(r.RestartOutagesS) > 0 {
			fmt.Fprintf(w, "%sserver unreachable after each restart: %v s\n", ind, r.RestartOutagesS)
		}
		if r.RestartError != "" {
			fmt.Fprintf(w, "%srestarts stopped: %s\n", ind, r.RestartError)
		}
		a := r.Ambiguous
		fmt.Fprintf(w, "%sunknown outcome: %d calls (%d ErrCommitUnknown, %d in flight in killed processes)", ind, a.Calls, a.CommitUnknown, a.InFlightKilled)
		if a.CommitUnknown > 0 && r.Scenario == "transfer" && r.Strategy == "racefree" {
			fmt.Fprintf(w, "; settled through the ledger: %d had committed, %d had not and ran again, %d ran again and failed, %d unresolved",
				a.Committed, a.Retried, a.RetryFailed, a.Unresolved)
		}
		fmt.Fprintln(w)
		if r.Leftovers != nil {
			fmt.Fprintf(w, "%sleft on the server: %s; pooled connections still in use when workers stopped: %d\n", ind, r.Leftovers.Words, r.ConnsInUse)
		}
		for _, d := range r.Deaths {
			fmt.Fprintf(w, "%sworker process %d (pid %d): %s, after %d calls, %d in flight\n", ind, d.Proc, d.PID, d.Cause, d.Ops, d.InFlight)
		}
	}
}
