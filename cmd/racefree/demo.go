package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/lab"
)

// DemoCommand runs the get-or-create storm and the bank transfer with naive
// code and with racefree on an embedded SQLite database, from several OS
// processes, and says in plain words what happened.
type DemoCommand struct {
	workers  int
	procs    int
	duration time.Duration
}

const demoSynopsis = `demo [--procs N] [--workers N] [--duration D]

Runs two classic races on an embedded SQLite database in a temporary
directory — nothing to install — first with the code people usually write,
then with racefree, and tells what each left in the database.`

// Run runs the demo.
func (c *DemoCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.IntVar(&c.procs, "procs", 4, "OS processes")
	fs.IntVar(&c.workers, "workers", 8, "goroutines per process")
	fs.DurationVar(&c.duration, "duration", 4*time.Second, "run time of each of the four runs")
	if err := parseFlags(fs, args, stdout, demoSynopsis); err != nil {
		return err
	}
	switch {
	case c.procs < 1 || c.procs > 64:
		return usagef("--procs must be between 1 and 64, got %d", c.procs)
	case c.workers < 1 || c.workers > 1024:
		return usagef("--workers must be between 1 and 1024, got %d", c.workers)
	case c.duration <= 0:
		return usagef("--duration must be positive, got %v", c.duration)
	}
	dir, err := os.MkdirTemp("", "racefree-demo-")
	if err != nil {
		return fmt.Errorf("make a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	dsn := "sqlite:" + filepath.Join(dir, "demo.db")
	db, err := openDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	p := func(format string, args ...any) { fmt.Fprintf(stdout, format, args...) }
	p("racefree demo: %s in %s\n", db.Dialect().Server(), dir)
	p("%s × %s each, all starting at the same moment; %v per run.\n\n", plural(c.procs, "OS process", "OS processes"), plural(c.workers, "goroutine", "goroutines"), c.duration)

	bar := newProgress(stderr, isTerminal(stdout) && isTerminal(stderr), c.duration)
	defer bar.stop()
	r := &runner{db: db, nodes: []*racefree.DB{db}, dsns: []string{dsn}, workers: c.workers, procs: c.procs, duration: c.duration, progress: bar.begin}
	run := func(scenario, strategy string) (lab.Result, error) {
		res, err := r.run(ctx, &lab.Spec{Scenario: scenario, Strategy: strategy, Keys: 10, Rotate: map[bool]time.Duration{true: lab.DefaultRotate}[scenario == "goc"]})
		bar.end()
		return res, err
	}
	calls := func(res lab.Result) string {
		return fmt.Sprintf("%s calls in %.1fs, %s", commas(res.Ops), res.DurationS, errorsWords(res))
	}

	var failed []string
	p("1. Get-or-create storm. Every worker asks for the same few keys at once —\n")
	p("   \"find the user with this email, or create it\" — and a fresh set of keys\n")
	p("   appears every %v.\n\n", lab.DefaultRotate)
	steps := []struct {
		scenario, strategy, title string
	}{
		{"goc", "naive", "Naive code: SELECT, then INSERT if nothing was found"},
		{"goc", "racefree", "racefree.GetOrCreate"},
		{"transfer", "naive", "Naive code: read both balances, write the new ones"},
		{"transfer", "racefree", "racefree.Transfer in RunOnce: rows locked in key order, floor held (and each transfer writes its idempotency key and a ledger row)"},
	}
	for i, s := range steps {
		if i == 2 {
			p("2. Bank transfer. 10 accounts hold %s each, %s in all; workers move\n", commas(lab.InitialBalance), commas(10*lab.InitialBalance))
			p("   random amounts between random pairs, in both directions.\n\n")
		}
		res, err := run(s.scenario, s.strategy)
		if err != nil {
			return err
		}
		p("   %s\n", s.title)
		p("     %s\n", calls(res))
		p("     %s\n\n", demoVerdict(res))
		if s.strategy == "racefree" && (!res.InvariantOK || res.Errors > 0) {
			failed = append(failed, s.scenario)
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
	}
	p("Why: the naive code checks, then acts, in two statements. Between the two,\n")
	p("another worker acts on the same row, and neither sees the other. A mutex\n")
	p("does not help: these workers are separate processes, as they are behind any\n")
	p("load balancer (try: racefree lab --dsn sqlite:lab.db --strategy naive,mutex,racefree).\n")
	p("racefree makes the database the arbiter: a unique index decides who creates\n")
	p("the row, rows are locked in one order, the debit is one conditional UPDATE,\n")
	p("and what can be retried is retried.\n")
	if len(failed) > 0 {
		return fmt.Errorf("racefree failed its own demo in %v: please report this", failed)
	}
	return nil
}

// errorsWords says how many errors reached callers.
func errorsWords(res lab.Result) string {
	switch res.Errors {
	case 0:
		return "no errors"
	case 1:
		return "1 error reached a caller: " + res.ErrorsText()
	}
	return fmt.Sprintf("%d errors reached callers: %s", res.Errors, res.ErrorsText())
}

// demoVerdict says in plain words what the run left in the database.
func demoVerdict(res lab.Result) string {
	switch {
	case res.Duplicates != nil && *res.Duplicates > 0:
		return fmt.Sprintf("✗ the table now holds %s duplicate rows: %s rows for %s keys.", commas(*res.Duplicates), commas(res.RowCount), commas(res.RowCount-*res.Duplicates))
	case res.Drift != nil && *res.Drift > 0:
		return fmt.Sprintf("✗ %s of money was created out of nothing: the accounts hold %s, not %s.", commas(*res.Drift), commas(res.RowCount), commas(res.RowCount-*res.Drift))
	case res.Drift != nil && *res.Drift < 0:
		return fmt.Sprintf("✗ %s of money was lost: the accounts hold %s, not %s.", commas(-*res.Drift), commas(res.RowCount), commas(res.RowCount-*res.Drift))
	case !res.InvariantOK:
		return "✗ " + res.Invariant + "."
	case res.Strategy != "racefree":
		return "✓ this time the race did not show (" + res.Invariant + "); run the demo again."
	case res.Duplicates != nil:
		return fmt.Sprintf("✓ no duplicates: %s rows for %s keys.", commas(res.RowCount), commas(res.RowCount))
	default:
		return fmt.Sprintf("✓ the accounts still hold %s in all.", commas(res.RowCount))
	}
}

// commas writes n with thousands separators: 304,229.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
