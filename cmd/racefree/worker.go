package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// WorkerCommand is the hidden subcommand each lab worker process runs: it
// connects, says it is ready and waits for the common start (lab.Control),
// runs its goroutines until the common end,
// and prints what it measured as one JSON line for the parent. Every call
// is also counted in its tally file, which the parent reads if the process
// dies before it can report.
type WorkerCommand struct {
	dsn      string
	spec     lab.Spec
	workers  int
	duration time.Duration
	seed     int64
	via      string
	tag      string
	tally    string
	patient  time.Duration
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
	fs.DurationVar(&c.duration, "duration", time.Second, "run time from the start")
	fs.Int64Var(&c.seed, "seed", 1, "random seed")
	fs.StringVar(&c.via, "via", "", "connect through this host:port (the cut proxy)")
	fs.StringVar(&c.tag, "tag", "", "name of the sessions on the server")
	fs.StringVar(&c.tally, "tally", "", "tally file")
	fs.DurationVar(&c.patient, "patient", 0, "keep trying to connect this long (the server may be restarting)")
	if err := parseFlags(fs, args, io.Discard, workerCommand); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	control := lab.WatchStdin(stdin, cancel)
	tally, err := lab.OpenTally(c.tally)
	if err != nil {
		return err
	}
	defer tally.Close()
	db, err := c.open(ctx, tally)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := lab.Work(ctx, db.DB, c.spec, c.workers, control.Start(stdout), c.duration, uint64(c.seed), tally)
	if err != nil {
		return err
	}
	return lab.Report(stdout, p)
}

// open connects, retrying for c.patient while the server does not answer.
func (c *WorkerCommand) open(ctx context.Context, tally *lab.Tally) (*lab.Worker, error) {
	giveUp := time.Now().Add(c.patient)
	for {
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		db, err := lab.OpenWorker(octx, c.dsn, lab.ConnOptions{Via: c.via, Tag: c.tag, Tally: tally})
		cancel()
		if err == nil {
			return db, nil
		}
		if time.Now().After(giveUp) || ctx.Err() != nil {
			return nil, fmt.Errorf("open %s: %w", redact(c.dsn), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
