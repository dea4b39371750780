package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/lab"
)

// startDelay is how long after launching the worker processes they all
// start working: time enough for every process to start and open its
// connections, so that they really begin together.
func startDelay(procs int) time.Duration {
	return 400*time.Millisecond + time.Duration(procs)*100*time.Millisecond
}

// runner runs one strategy at a time from procs OS processes of this
// program, each with workers goroutines.
type runner struct {
	db       *racefree.DB
	dsn      string
	workers  int
	procs    int
	duration time.Duration
	keep     bool // keep the tables after the run, for inspection
	// progress, if set, is called when a strategy's workers start, with
	// the time they start.
	progress func(spec *lab.Spec, start time.Time)
}

// run creates the spec's table, runs the worker processes, reads the
// verdict from the database and drops the table. When ctx ends during the
// run, the workers stop, and the result holds what was measured until then.
func (r *runner) run(ctx context.Context, spec *lab.Spec) (lab.Result, error) {
	d := r.db.Dialect()
	spec.Table = lab.TableName(spec.Scenario)
	exe, err := os.Executable()
	if err != nil {
		return lab.Result{}, fmt.Errorf("find this program to start worker processes: %w", err)
	}
	// Table work must complete even when the run is interrupted.
	bg := context.WithoutCancel(ctx)
	if err := lab.Setup(bg, r.db.SQL(), d.Name(), spec); err != nil {
		return lab.Result{}, err
	}
	if !r.keep {
		defer lab.Drop(bg, r.db.SQL(), spec)
	}
	start := time.Now().Add(startDelay(r.procs))
	if r.progress != nil {
		r.progress(spec, start)
	}
	args := []string{workerCommand,
		"-dsn", r.dsn, "-scenario", spec.Scenario, "-strategy", spec.Strategy, "-table", spec.Table,
		"-keys", strconv.Itoa(spec.Keys), "-rotate", spec.Rotate.String(),
		"-workers", strconv.Itoa(r.workers), "-duration", r.duration.String(),
		"-start", strconv.FormatInt(start.UnixNano(), 10),
	}
	parts, err := lab.Spawn(ctx, r.procs, exe, func(i int) []string {
		return append(args, "-seed", strconv.FormatInt(start.UnixNano()+int64(i), 10))
	})
	if err != nil && ctx.Err() == nil {
		return lab.Result{}, fmt.Errorf("run %s/%s: %w", spec.Scenario, spec.Strategy, firstErr(err))
	}
	// Interrupted: a process caught before it could set up its signal
	// handling dies without a report; the others' reports still count.
	var total lab.Part
	for _, p := range parts {
		total.Merge(p)
	}
	if ctx.Err() != nil {
		total.Interrupted = true
	}
	v, err := lab.Check(bg, r.db.SQL(), spec, total.OK)
	if err != nil {
		return lab.Result{}, err
	}
	return lab.NewResult(spec, d.Name(), d.Server(), r.workers, r.procs, total, v), nil
}

// firstErr returns the first of joined errors: every worker process usually
// fails for the same reason, which needs saying once.
func firstErr(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
}
