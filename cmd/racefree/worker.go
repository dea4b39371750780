package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// WorkerCommand is the hidden subcommand each lab worker process runs: it
// waits for the common start, runs its goroutines for the duration, and
// prints what it measured as one JSON line for the parent.
type WorkerCommand struct {
	dsn      string
	spec     lab.Spec
	workers  int
	duration time.Duration
	start    int64
	seed     int64
}

// Run runs the worker process.
func (c *WorkerCommand) Run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet(workerCommand, flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database")
	fs.StringVar(&c.spec.Scenario, "scenario", "", "scenario")
	fs.StringVar(&c.spec.Strategy, "strategy", "", "strategy")
	fs.StringVar(&c.spec.Table, "table", "", "table")
	fs.IntVar(&c.spec.Keys, "keys", 1, "distinct keys")
	fs.DurationVar(&c.spec.Rotate, "rotate", 0, "key set renewal")
	fs.IntVar(&c.workers, "workers", 1, "goroutines")
	fs.DurationVar(&c.duration, "duration", time.Second, "run time")
	fs.Int64Var(&c.start, "start", 0, "start time, Unix nanoseconds")
	fs.Int64Var(&c.seed, "seed", 1, "random seed")
	if err := parseFlags(fs, args, io.Discard, workerCommand); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lab.WatchStdin(stdin, cancel)
	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := lab.Work(ctx, db, c.spec, c.workers, time.Unix(0, c.start), c.duration, uint64(c.seed))
	if err != nil {
		return err
	}
	return lab.Report(stdout, p)
}
