package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/racefree/racefree/internal/bench"
	"github.com/racefree/racefree/internal/lab"
)

// benchWorkerCommand is the hidden subcommand each worker process of the
// bench's scaling phase runs: the racefree binary re-executed, as the
// lab's workers are.
const benchWorkerCommand = "bench-worker"

// launch runs one side of a case at one scaling point: p.Procs worker
// processes of this program with p.Goroutines goroutines each, all
// starting together (a lab.Fleet, as the lab starts its workers). A
// process that dies without its report fails the point: its measurements
// are lost, and the point would understate the throughput.
func (c *BenchCommand) launch(ctx context.Context, exe, dsn, caseName string, env bench.Env, side bench.Side, p bench.ScalePoint) ([]lab.Part, error) {
	launched := time.Now().UnixNano()
	args := []string{benchWorkerCommand,
		"-dsn", dsn, "-case", caseName, "-side", side.String(), "-table", env.Table,
		"-batch", strconv.Itoa(env.Batch), "-accounts", strconv.Itoa(env.Accounts),
		"-goroutines", strconv.Itoa(p.Goroutines), "-pool", strconv.Itoa(c.pool),
		"-duration", c.scaleTime.String(), "-launch", strconv.FormatInt(launched, 10),
	}
	fleet := &lab.Fleet{
		Exe: exe, Procs: p.Procs, Duration: c.scaleTime,
		Args: func(_, n int) []string {
			// Called from one goroutine per process: each gets its own copy.
			return append(slices.Clip(args), "-seed", strconv.FormatInt(launched+int64(n), 10))
		},
	}
	fr, err := fleet.Run(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if len(fr.Deaths) > 0 {
		d := fr.Deaths[0]
		return nil, fmt.Errorf("worker process %d: %s", d.Proc, d.Cause)
	}
	return fr.Parts, nil
}

// BenchWorkerCommand runs one side of one case in a worker process: it
// connects, waits for the common start (lab.Control), calls the side from
// its goroutines for the duration, and prints what it measured as one
// JSON line for the parent.
type BenchWorkerCommand struct {
	dsn, caseName, side, table string
	batch, accounts            int
	goroutines, pool           int
	duration                   time.Duration
	launch, seed               int64
	tally                      string
}

// Run runs the worker process.
func (c *BenchWorkerCommand) Run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet(benchWorkerCommand, flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database")
	fs.StringVar(&c.caseName, "case", "", "case")
	fs.StringVar(&c.side, "side", "", "raw or racefree")
	fs.StringVar(&c.table, "table", "", "the case's table")
	fs.IntVar(&c.batch, "batch", bench.DefaultBatch, "items per batch")
	fs.IntVar(&c.accounts, "accounts", bench.DefaultAccounts, "accounts")
	fs.IntVar(&c.goroutines, "goroutines", 1, "goroutines")
	fs.IntVar(&c.pool, "pool", 32, "connections at most")
	fs.DurationVar(&c.duration, "duration", time.Second, "run time")
	fs.Int64Var(&c.launch, "launch", 0, "the launch's time, Unix nanoseconds: what its processes share")
	fs.Int64Var(&c.seed, "seed", 1, "random seed")
	fs.StringVar(&c.tally, "tally", "", "the lab's tally file (unused: a bench worker that dies fails its point)")
	if err := parseFlags(fs, args, io.Discard, benchWorkerCommand); err != nil {
		return err
	}
	cs, ok := bench.Lookup(c.caseName)
	if !ok {
		return usagef("unknown case %q", c.caseName)
	}
	side, err := bench.ParseSide(c.side)
	if err != nil {
		return usagef("%v", err)
	}
	if c.goroutines < 1 || c.pool < 1 || c.duration <= 0 {
		return usagef("need goroutines, a pool and a duration, got %d, %d, %v", c.goroutines, c.pool, c.duration)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	control := lab.WatchStdin(stdin, cancel)
	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SQL().SetMaxOpenConns(bench.PoolSize(c.goroutines, c.pool))
	db.SQL().SetMaxIdleConns(bench.PoolSize(c.goroutines, c.pool))
	env := bench.Env{DB: db, Table: c.table, Batch: c.batch, Accounts: c.accounts, Run: strconv.FormatInt(c.launch, 36)}
	pair, err := cs.Ops(ctx, env)
	if err != nil {
		return fmt.Errorf("case %s: %w", cs.Name, err)
	}
	p, err := bench.Work(ctx, db, pair.Op(side), c.goroutines, control.Start(stdout), c.duration, uint64(c.seed))
	if err != nil {
		return err
	}
	return lab.Report(stdout, p)
}
