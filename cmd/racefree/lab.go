package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// LabCommand runs scenarios × strategies from many OS processes against a
// database and checks what each strategy left behind.
type LabCommand struct {
	dsn        string
	scenario   string
	strategies string
	workers    int
	procs      int
	duration   time.Duration
	keys       int
	rotate     time.Duration
	unique     bool
	jsonOut    bool
	report     string
	keep       bool
}

const labSynopsis = `lab --dsn DSN [--scenario S] [--strategy LIST] [--workers N] [--procs N] [--duration D] [--keys K] [--json] [--report FILE.html]

Runs a scenario with each strategy in turn: --workers goroutines in each of
--procs OS processes, all starting together, for --duration. Then it reads the
database to check the scenario's invariant and prints one row per strategy.

Scenarios: goc (get-or-create storm), transfer (bank transfers between random
accounts), counter (read-increment-write), m2m (adding many-to-many links).
Strategies: naive, mutex, tablelock, catch, createfirst, forupdate,
serializable, racefree ("all" runs every one that applies).`

// Run runs the lab.
func (c *LabCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database to run against: postgres://…, mysql://…, sqlite:FILE")
	fs.StringVar(&c.scenario, "scenario", "goc", "scenario: "+strings.Join(lab.Scenarios, ", "))
	fs.StringVar(&c.strategies, "strategy", "naive,mutex,racefree", "comma-separated strategies, or all")
	fs.IntVar(&c.workers, "workers", 16, "goroutines per process")
	fs.IntVar(&c.procs, "procs", 4, "OS processes")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "run time per strategy")
	fs.IntVar(&c.keys, "keys", 0, "distinct keys: lookup values (goc), accounts (transfer), counters (counter), tags (m2m); default 10")
	fs.DurationVar(&c.rotate, "rotate", lab.DefaultRotate, "goc and m2m: renew the key set this often, so the storm on fresh keys repeats (0: never)")
	fs.BoolVar(&c.unique, "unique", false, "goc and m2m: give every strategy's table a unique index (races then surface as errors)")
	fs.BoolVar(&c.jsonOut, "json", false, "print one JSON object per strategy, one per line")
	fs.StringVar(&c.report, "report", "", "also write a self-contained HTML report to this file")
	fs.BoolVar(&c.keep, "keep", false, "keep the lab's tables after the run")
	if err := parseFlags(fs, args, stdout, labSynopsis); err != nil {
		return err
	}
	strategies, err := c.validate()
	if err != nil {
		return err
	}
	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	d := db.Dialect()
	if len(strategies) == 1 && strategies[0] == "all" {
		strategies = nil
		for _, s := range lab.Strategies {
			if lab.CheckSupported(d, c.scenario, s) == nil {
				strategies = append(strategies, s)
			}
		}
	}
	for _, s := range strategies {
		if err := lab.CheckSupported(d, c.scenario, s); err != nil {
			return err
		}
	}
	if c.keys == 0 {
		c.keys = lab.DefaultKeys
	}
	if c.scenario != "goc" && c.scenario != "m2m" {
		c.rotate = 0
	}

	show := !c.jsonOut
	if show {
		fmt.Fprintf(stdout, "racefree lab: %s on %s — %s × %s, %v per strategy, %s\n\n",
			c.scenario, d.Server(), plural(c.procs, "process", "processes"), plural(c.workers, "worker", "workers"), c.duration, keysText(c.scenario, c.keys, c.rotate))
	}
	bar := newProgress(stderr, show && isTerminal(stdout) && isTerminal(stderr), c.duration)
	defer bar.stop()
	r := &runner{db: db, dsn: c.dsn, workers: c.workers, procs: c.procs, duration: c.duration, keep: c.keep, progress: bar.begin}
	var results []lab.Result
	for _, s := range strategies {
		if ctx.Err() != nil {
			break
		}
		spec := &lab.Spec{Scenario: c.scenario, Strategy: s, Keys: c.keys, Unique: c.unique, Rotate: c.rotate}
		res, err := r.run(ctx, spec)
		bar.end()
		if err != nil {
			c.flush(stdout, results, show)
			return err
		}
		results = append(results, res)
		if c.jsonOut {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return err
			}
		}
	}
	bar.stop()
	if err := c.flush(stdout, results, show); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	return nil
}

// flush prints the table and writes the report of what was measured.
func (c *LabCommand) flush(stdout io.Writer, results []lab.Result, show bool) error {
	if show && len(results) > 0 {
		if err := lab.WriteTable(stdout, results); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		for _, r := range results {
			fmt.Fprintf(stdout, "  %-12s %s: %s\n", r.Strategy, lab.Describe(r.Scenario, r.Strategy), r.Invariant)
		}
	}
	if c.report != "" && len(results) > 0 {
		f, err := os.Create(c.report)
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		info := lab.ReportInfo{
			Title:   "racefree lab: " + c.scenario + " on " + results[0].Server,
			Command: "racefree lab --dsn " + redact(c.dsn) + " --scenario " + c.scenario + " --strategy " + c.strategies + fmt.Sprintf(" --workers %d --procs %d --duration %v --keys %d", c.workers, c.procs, c.duration, c.keys),
			When:    time.Now(),
		}
		werr := lab.WriteHTML(f, info, results)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("write report: %w", werr)
		}
		if show {
			fmt.Fprintf(stdout, "\nreport written to %s\n", c.report)
		}
	}
	return nil
}

// validate checks the flags that need no database, and returns the
// strategies.
func (c *LabCommand) validate() ([]string, error) {
	if !slices.Contains(lab.Scenarios, c.scenario) {
		return nil, usagef("unknown scenario %q (known: %s)", c.scenario, strings.Join(lab.Scenarios, ", "))
	}
	var out []string
	for _, s := range strings.Split(c.strategies, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if s != "all" && !slices.Contains(lab.Strategies, s) {
			return nil, usagef("unknown strategy %q (known: %s, or all)", s, strings.Join(lab.Strategies, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	switch {
	case len(out) == 0:
		return nil, usagef("--strategy lists no strategy")
	case slices.Contains(out, "all") && len(out) > 1:
		return nil, usagef("--strategy all cannot be combined with other strategies")
	case c.workers < 1 || c.workers > 1024:
		return nil, usagef("--workers must be between 1 and 1024, got %d", c.workers)
	case c.procs < 1 || c.procs > 64:
		return nil, usagef("--procs must be between 1 and 64, got %d", c.procs)
	case c.duration <= 0:
		return nil, usagef("--duration must be positive, got %v", c.duration)
	case c.keys < 0 || c.keys > 1_000_000:
		return nil, usagef("--keys must be between 1 and 1000000, got %d", c.keys)
	case c.scenario == "transfer" && c.keys == 1:
		return nil, usagef("--keys must be at least 2 for transfer: money moves between two accounts")
	case c.rotate < 0:
		return nil, usagef("--rotate must not be negative")
	}
	return out, nil
}

// plural writes n with the right form of the noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func keysText(scenario string, keys int, rotate time.Duration) string {
	noun := map[string]string{"goc": "keys", "transfer": "accounts", "counter": "counters", "m2m": "tags"}[scenario]
	s := fmt.Sprintf("%d %s", keys, noun)
	if rotate > 0 {
		s += fmt.Sprintf(", a fresh set every %v", rotate)
	}
	return s
}
