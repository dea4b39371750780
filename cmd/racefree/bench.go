package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/racefree/racefree/internal/bench"
	"github.com/racefree/racefree/internal/lab"
)

// BenchCommand measures racefree's operations against the raw statements
// a careful programmer would write, on the user's database, and how they
// scale with processes and goroutines.
type BenchCommand struct {
	dsn        string
	quick      bool
	jsonOut    bool
	html       string
	cases      string
	rounds     int
	segment    time.Duration
	confidence float64
	batch      int
	accounts   int
	scale      string
	procs      string
	goroutines string
	procGors   int
	scaleTime  time.Duration
	pool       int

	args []string // the command line, for the report
}

const benchSynopsis = `bench [--dsn DSN] [--quick] [--json] [--html FILE] [--cases LIST] [--scale LIST] …

Measures racefree's operations against the raw statements a careful programmer
would write, in one run on your database (SQLite in a temporary file when --dsn
is not given): each case's two sides run in alternating rounds, and each ratio
(racefree ÷ raw throughput) comes with a confidence interval. Then the cases
named by --scale run from 1 to 16 OS processes and 1 to 256 goroutines.
docs/bench.md explains the cases, the statistics and the JSON fields.`

// Quick-run defaults: a smoke run that finishes in well under a minute.
var quickDefaults = map[string]string{
	"rounds": "5", "round": "150ms", "scale": "hit", "procs": "1,4,16", "goroutines": "1,16,256", "scale-time": "300ms",
}

// Run runs the bench.
func (c *BenchCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c.args = args
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database to measure: postgres://…, mysql://…, sqlite:FILE (default: SQLite in a temporary file)")
	fs.BoolVar(&c.quick, "quick", false, "a smoke run: fewer and shorter rounds, fewer scaling points ("+quickText()+")")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON (fields: docs/bench.md) instead of tables")
	fs.StringVar(&c.html, "html", "", "also write a self-contained HTML report with charts to this file")
	fs.StringVar(&c.cases, "cases", "all", "comma-separated cases to measure: "+strings.Join(bench.Names(), ", ")+", or all")
	fs.IntVar(&c.rounds, "rounds", bench.DefaultRounds, "alternating rounds per case (ratios in the interval)")
	fs.DurationVar(&c.segment, "round", bench.DefaultSegment, "how long each side runs in each round")
	fs.Float64Var(&c.confidence, "confidence", bench.DefaultConfidence, "confidence level of the ratio intervals")
	fs.IntVar(&c.batch, "batch", bench.DefaultBatch, "items per call in the batch case")
	fs.IntVar(&c.accounts, "accounts", bench.DefaultAccounts, "accounts in the transfer case")
	fs.StringVar(&c.scale, "scale", "hit,transfer", "comma-separated cases to run at growing concurrency, or none")
	fs.StringVar(&c.procs, "procs", joinInts(bench.DefaultProcs, ","), "scaling: numbers of OS processes (--proc-goroutines goroutines each)")
	fs.IntVar(&c.procGors, "proc-goroutines", 1, "scaling: goroutines in each process of --procs (more than 1: a fleet of busy processes)")
	fs.StringVar(&c.goroutines, "goroutines", joinInts(bench.DefaultGoroutines, ","), "scaling: numbers of goroutines (in one process)")
	fs.DurationVar(&c.scaleTime, "scale-time", 2*time.Second, "scaling: how long each side runs at each point")
	fs.IntVar(&c.pool, "pool", 32, "connections per process at most; more goroutines wait for one")
	if err := parseFlags(fs, args, stdout, benchSynopsis); err != nil {
		return err
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return err
				}
			}
		}
	}
	cases, scaled, procs, gors, err := c.validate()
	if err != nil {
		return err
	}

	dsn := c.dsn
	if dsn == "" {
		dir, err := os.MkdirTemp("", "racefree-bench-")
		if err != nil {
			return fmt.Errorf("make a temporary directory for the SQLite database: %w", err)
		}
		defer os.RemoveAll(dir)
		dsn = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	db, err := openDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	maxG := 1
	for _, cs := range cases {
		maxG = max(maxG, cs.Goroutines)
	}
	db.SQL().SetMaxOpenConns(bench.PoolSize(maxG, c.pool))
	db.SQL().SetMaxIdleConns(bench.PoolSize(maxG, c.pool))

	d := db.Dialect()
	rep := &bench.Report{
		Schema: bench.Schema, Command: c.commandLine(), Started: time.Now().UTC(),
		Engine: d.Name(), Server: d.Server(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Settings: bench.Settings{
			Quick: c.quick, Rounds: c.rounds, SegmentMS: ms(c.segment), WarmupMS: ms(c.segment), Confidence: c.confidence,
			Batch: c.batch, Accounts: c.accounts, ScaleMS: ms(c.scaleTime), Procs: procs, Goroutines: gors, ProcGoroutines: c.procGors, Pool: c.pool,
		},
		Cases: []bench.CaseResult{}, Scaling: []bench.ScaleResult{},
	}
	measure := bench.MeasureConfig{
		Rounds: c.rounds, Segment: c.segment, Warmup: c.segment, Confidence: c.confidence,
		Seed: uint64(time.Now().UnixNano()),
	}
	scaleCfg := bench.ScaleConfig{Procs: procs, Goroutines: gors, ProcGoroutines: c.procGors}
	total := len(cases)*measure.Steps() + len(scaled)*scaleCfg.Steps()
	bar := newBenchProgress(stderr, isTerminal(stderr), total)
	defer bar.finish()
	if !c.jsonOut && isTerminal(stdout) {
		fmt.Fprintf(stdout, "racefree bench on %s: %d cases, then scaling %s\n", d.Server(), len(cases), scaleText(scaled))
	}

	r := &bench.Runner{DB: db, Batch: c.batch, Accounts: c.accounts, Measure: measure,
		Step: func(cs *bench.Case, s bench.Side, round int) {
			bar.step(fmt.Sprintf("%-18s %s", cs.Name, roundText(s, round, c.rounds)))
		},
	}
	for _, cs := range cases {
		bar.describe(fmt.Sprintf("%-18s warm-up", cs.Name))
		res, err := r.RunCase(ctx, cs)
		if err != nil {
			break // interrupted
		}
		rep.Cases = append(rep.Cases, res)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start worker processes: %w", err)
	}
	for _, cs := range scaled {
		if ctx.Err() != nil {
			break
		}
		rep.Scaling = append(rep.Scaling, c.scaleCase(ctx, r, cs, dsn, exe, scaleCfg, bar)...)
	}
	bar.finish()
	rep.Interrupted = ctx.Err() != nil

	if err := c.write(stdout, rep); err != nil {
		return err
	}
	if rep.Interrupted {
		return errInterrupted
	}
	if err := bench.Validate(rep); err != nil {
		return fmt.Errorf("the run is incomplete: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// scaleCase runs one case's scaling curves on a fresh table from worker
// processes of this program.
func (c *BenchCommand) scaleCase(ctx context.Context, r *bench.Runner, cs *bench.Case, dsn, exe string, cfg bench.ScaleConfig, bar *benchProgress) []bench.ScaleResult {
	fail := func(err error) []bench.ScaleResult {
		return []bench.ScaleResult{{Case: cs.Name, Axis: "all", Error: err.Error()}}
	}
	env, drop, err := r.Prepare(ctx, cs)
	if err != nil {
		return fail(err)
	}
	defer drop()
	// Building the sides here first turns an engine the case cannot run
	// on into one clear line rather than an error from every process. A
	// case the engine lacks is not scaled; its ratio entry says why.
	if _, err := cs.Ops(ctx, env); errors.Is(err, bench.ErrUnsupported) {
		return nil
	} else if err != nil {
		return fail(err)
	}
	cfg.Step = func(axis string, p bench.ScalePoint, s bench.Side) {
		bar.step(fmt.Sprintf("scaling %-10s %3d×%-3d %s", cs.Name, p.Procs, p.Goroutines, s))
	}
	launch := func(ctx context.Context, side bench.Side, p bench.ScalePoint) ([]lab.Part, error) {
		bar.describe(fmt.Sprintf("scaling %-10s %3d×%-3d %s", cs.Name, p.Procs, p.Goroutines, side))
		return c.launch(ctx, exe, dsn, cs.Name, env, side, p)
	}
	return bench.Scale(ctx, cs.Name, cfg, launch)
}

// write prints the report as JSON or tables, and writes the HTML file.
func (c *BenchCommand) write(stdout io.Writer, rep *bench.Report) error {
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
	} else if err := bench.WriteTable(stdout, rep); err != nil {
		return err
	}
	if c.html == "" {
		return nil
	}
	f, err := os.Create(c.html)
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	werr := bench.WriteHTML(f, rep)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write HTML report %s: %w", c.html, werr)
	}
	if !c.jsonOut {
		fmt.Fprintf(stdout, "\nHTML report written to %s\n", c.html)
	}
	return nil
}

// validate checks the flags that need no database and returns the cases
// to measure, the cases to scale and the scaling levels.
func (c *BenchCommand) validate() (cases, scaled []*bench.Case, procs, gors []int, err error) {
	if cases, err = pickCases("--cases", c.cases, "all"); err != nil {
		return
	}
	if scaled, err = pickCases("--scale", c.scale, "none"); err != nil {
		return
	}
	if procs, err = parseInts("--procs", c.procs, 1, 64); err != nil {
		return
	}
	if gors, err = parseInts("--goroutines", c.goroutines, 1, 4096); err != nil {
		return
	}
	switch {
	case c.rounds < 2 || c.rounds > 1000:
		err = usagef("--rounds must be between 2 and 1000 (an interval needs at least 2 ratios), got %d", c.rounds)
	case c.segment <= 0 || c.segment > time.Minute:
		err = usagef("--round must be positive and at most 1m, got %v", c.segment)
	case !(c.confidence > 0 && c.confidence < 1):
		err = usagef("--confidence must be between 0 and 1, got %v", c.confidence)
	case c.batch < 1 || c.batch > 10000:
		err = usagef("--batch must be between 1 and 10000, got %d", c.batch)
	case c.accounts < 2 || c.accounts > 1_000_000:
		err = usagef("--accounts must be between 2 and 1000000, got %d", c.accounts)
	case c.scaleTime <= 0 || c.scaleTime > 10*time.Minute:
		err = usagef("--scale-time must be positive and at most 10m, got %v", c.scaleTime)
	case c.procGors < 1 || c.procGors > 4096:
		err = usagef("--proc-goroutines must be between 1 and 4096, got %d", c.procGors)
	case c.pool < 1 || c.pool > 1000:
		err = usagef("--pool must be between 1 and 1000, got %d", c.pool)
	case len(scaled) > 0 && len(procs)+len(gors) == 0:
		err = usagef("--procs and --goroutines list no scaling point")
	}
	return
}

// pickCases resolves a comma-separated list of case names; all names
// every case and none no case.
func pickCases(flagName, list, empty string) ([]*bench.Case, error) {
	var out []*bench.Case
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue
		case n == "all":
			return bench.Cases(), nil
		case n == "none":
			return nil, nil
		}
		cs, ok := bench.Lookup(n)
		if !ok {
			return nil, usagef("%s: unknown case %q (known: %s, or %s)", flagName, n, strings.Join(bench.Names(), ", "), empty)
		}
		if !slices.Contains(out, cs) {
			out = append(out, cs)
		}
	}
	if len(out) == 0 && empty == "all" {
		return nil, usagef("%s lists no case", flagName)
	}
	return out, nil
}

// parseInts parses a comma-separated list of integers within [lo, hi],
// sorted and without repeats.
func parseInts(flagName, list string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, usagef("%s: %q is not a number between %d and %d", flagName, f, lo, hi)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// commandLine is the command as given, with a DSN's password hidden.
func (c *BenchCommand) commandLine() string {
	parts := []string{"racefree", "bench"}
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case a == "--dsn" || a == "-dsn":
			parts = append(parts, a)
			if i+1 < len(c.args) {
				i++
				parts = append(parts, redact(c.args[i]))
			}
		case strings.HasPrefix(a, "--dsn=") || strings.HasPrefix(a, "-dsn="):
			k, v, _ := strings.Cut(a, "=")
			parts = append(parts, k+"="+redact(v))
		default:
			parts = append(parts, a)
		}
	}
	s := strings.Join(parts, " ")
	if c.dsn == "" {
		s += "   # SQLite in a temporary file"
	}
	return s
}

func quickText() string {
	keys := make([]string, 0, len(quickDefaults))
	for k := range quickDefaults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "--%s %s", k, quickDefaults[k])
	}
	return b.String()
}

func scaleText(cs []*bench.Case) string {
	if len(cs) == 0 {
		return "nothing"
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// roundText names a segment for the progress bar. The raw side runs one
// segment more than there are rounds: the one that closes the last round.
func roundText(side bench.Side, round, rounds int) string {
	switch {
	case round < 0:
		return "warm-up " + side.String()
	case round == rounds:
		return fmt.Sprintf("round %d/%d closing raw", rounds, rounds)
	}
	return fmt.Sprintf("round %d/%d %s", round+1, rounds, side)
}
