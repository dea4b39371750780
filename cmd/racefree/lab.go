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

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/lab"
)

// LabCommand runs scenarios × strategies from many OS processes against a
// database and checks what each strategy left behind.
type LabCommand struct {
	dsns       dsnList
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
	chaosSpec  string
	chaos      lab.Chaos
	restartCmd string
}

// dsnList is the --dsn flag: one DSN per node, given as a repeated flag or
// comma-separated.
type dsnList []string

func (l *dsnList) String() string { return strings.Join(*l, ",") }

// Set adds one DSN, or several separated by commas when every piece is a
// DSN of its own (a PostgreSQL URL may list several hosts with commas:
// that stays one DSN).
func (l *dsnList) Set(v string) error {
	pieces := strings.Split(v, ",")
	for _, p := range pieces {
		if !looksLikeDSN(p) {
			*l = append(*l, v)
			return nil
		}
	}
	*l = append(*l, pieces...)
	return nil
}

func looksLikeDSN(s string) bool {
	s = strings.TrimSpace(s)
	return strings.Contains(s, "://") || strings.Contains(s, "@tcp(") || strings.Contains(s, "@unix(") ||
		strings.HasPrefix(s, "sqlite:") || strings.HasPrefix(s, "file:")
}

const labSynopsis = `lab --dsn DSN[,DSN…] [--scenario S] [--strategy LIST] [--workers N] [--procs N] [--duration D] [--keys K] [--chaos kill=D,cut=R,restart=D [--restart-cmd CMD]] [--json] [--report FILE.html]

Runs a scenario with each strategy in turn: --workers goroutines in each of
--procs OS processes, all starting together, for --duration. Then it reads the
database to check the scenario's invariant and prints one row per strategy.
Several DSNs (nodes of one cluster) spread the processes over the nodes.
--chaos kills worker processes, cuts their connections and restarts the
server while they run; a worker process that dies is reported, and the run
goes on without it.

Scenarios: goc (get-or-create storm), transfer (bank transfers between random
accounts), counter (read-increment-write), m2m (adding many-to-many links).
Strategies: naive, mutex, tablelock, advisory, namedlock, catch, createfirst,
forupdate, serializable, racefree ("all" runs every one that applies).`

// Run runs the lab.
func (c *LabCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.Var(&c.dsns, "dsn", "database to run against: postgres://…, mysql://…, sqlite:FILE; repeat it (or separate with commas) for the nodes of a cluster")
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
	fs.StringVar(&c.chaosSpec, "chaos", "", "faults to inject: kill=DURATION (SIGKILL a worker process), cut=RATE (connection resets per second), restart=DURATION (restart the server with --restart-cmd)")
	fs.StringVar(&c.restartCmd, "restart-cmd", "", "shell command that restarts the database server, for --chaos restart")
	if err := parseFlags(fs, args, stdout, labSynopsis); err != nil {
		return err
	}
	strategies, err := c.validate()
	if err != nil {
		return err
	}
	var nodes []*racefree.DB
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for _, dsn := range c.dsns {
		n, err := openDB(ctx, dsn)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	db := nodes[0]
	d := db.Dialect()
	for i, n := range nodes[1:] {
		if n.Dialect().Name() != d.Name() {
			return fmt.Errorf("--dsn: node %d is %s, node 1 is %s: the DSNs must be nodes of one cluster", i+2, n.Dialect().Server(), d.Server())
		}
	}
	if d.Name() == "sqlite" {
		switch {
		case len(nodes) > 1:
			return fmt.Errorf("--dsn: SQLite has no cluster: give one DSN")
		case c.chaos.Cut > 0:
			return fmt.Errorf("--chaos cut: SQLite has no network connection to cut (kill works on SQLite)")
		case c.chaos.Restart > 0:
			return fmt.Errorf("--chaos restart: SQLite has no server to restart (kill works on SQLite)")
		}
	}
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
		on := d.Server()
		if len(nodes) > 1 {
			on = fmt.Sprintf("%d nodes of %s", len(nodes), on)
		}
		fmt.Fprintf(stdout, "racefree lab: %s on %s — %s × %s, %v per strategy, %s",
			c.scenario, on, plural(c.procs, "process", "processes"), plural(c.workers, "worker", "workers"), c.duration, keysText(c.scenario, c.keys, c.rotate))
		if c.chaos.Any() {
			fmt.Fprintf(stdout, "; chaos %s", c.chaos)
		}
		fmt.Fprint(stdout, "\n\n")
	}
	bar := newProgress(stderr, show && isTerminal(stdout) && isTerminal(stderr), c.duration)
	defer bar.stop()
	r := &runner{db: db, nodes: nodes, dsns: c.dsns, workers: c.workers, procs: c.procs, duration: c.duration, keep: c.keep,
		chaos: c.chaos, restartCmd: c.restartCmd, progress: bar.begin}
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
	for _, r := range results {
		if n := r.UnexpectedDeaths(); n > 0 {
			return fmt.Errorf("%s: %s died during the run (see above); the results count what they had done", r.Strategy, plural(n, "worker process", "worker processes"))
		}
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
		lab.WriteDetails(stdout, results)
	}
	if c.report != "" && len(results) > 0 {
		f, err := os.Create(c.report)
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		info := lab.ReportInfo{
			Title:   "racefree lab: " + c.scenario + " on " + results[0].Server,
			Command: "racefree lab --dsn " + c.redactedDSNs() + " --scenario " + c.scenario + " --strategy " + c.strategies + fmt.Sprintf(" --workers %d --procs %d --duration %v --keys %d", c.workers, c.procs, c.duration, c.keys),
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

func (c *LabCommand) redactedDSNs() string {
	out := make([]string, len(c.dsns))
	for i, d := range c.dsns {
		out[i] = redact(d)
	}
	return strings.Join(out, ",")
}

// validate checks the flags that need no database, and returns the
// strategies.
func (c *LabCommand) validate() ([]string, error) {
	if len(c.dsns) == 0 {
		_, err := openDB(context.Background(), "")
		return nil, err
	}
	var err error
	if c.chaos, err = lab.ParseChaos(c.chaosSpec); err != nil {
		return nil, usagef("--chaos: %v", err)
	}
	switch {
	case c.chaos.Restart > 0 && strings.TrimSpace(c.restartCmd) == "":
		return nil, usagef("--chaos restart needs --restart-cmd, the command that restarts the server (for example 'pg_ctlcluster 15 chaos restart')")
	case c.chaos.Restart == 0 && c.restartCmd != "":
		return nil, usagef("--restart-cmd is only for --chaos restart=DURATION")
	}
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
