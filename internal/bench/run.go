package bench

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/lab"
)

// NewWorkers returns n goroutine states with random sources derived from
// seed.
func NewWorkers(n int, seed uint64) []*Worker {
	ws := make([]*Worker, n)
	for i := range ws {
		ws[i] = &Worker{ID: i, Rand: rand.New(rand.NewPCG(seed, uint64(i)))}
	}
	return ws
}

// Segment calls op from one goroutine per worker, starting now, until d
// has passed, and returns what they measured: calls, failures by class,
// the latency of every call (HdrHistogram) and the time from the start to
// the end of the last call. A call in flight at the deadline finishes and
// counts, and each worker makes at least one call. When ctx ends, the
// goroutines stop starting calls.
//
// classify names an error's class for the report; nil names them all
// "error".
func Segment(ctx context.Context, op Op, workers []*Worker, d time.Duration, classify func(error) string) lab.Part {
	start := time.Now()
	deadline := start.Add(d)
	var (
		mu    sync.Mutex // guards total
		total lab.Part
		wg    sync.WaitGroup
	)
	for _, w := range workers {
		wg.Go(func() {
			var p lab.Part
			// Every worker makes at least one call: on a loaded machine a
			// goroutine may first run after a short segment's end, and a
			// side that made no call could not be compared.
			for first := true; ctx.Err() == nil && (first || time.Now().Before(deadline)); first = false {
				// A call is never cut off halfway by the end of the run: it
				// would leave the database in a state no caller asked for.
				callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lab.OpTimeout)
				t0 := time.Now()
				err := op(callCtx, w)
				p.Hist.Record(time.Since(t0))
				cancel()
				p.Ops++
				if err == nil {
					p.OK++
					continue
				}
				class := "error"
				if classify != nil {
					class = classify(err)
				}
				if p.Errors == nil {
					p.Errors, p.Samples = map[string]int64{}, map[string]string{}
				}
				p.Errors[class]++
				if _, ok := p.Samples[class]; !ok {
					p.Samples[class] = err.Error()
				}
			}
			mu.Lock()
			total.Merge(p)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.Elapsed = time.Since(start)
	total.Interrupted = ctx.Err() != nil
	return total
}

// Classifier returns a classify function for Segment that names errors by
// db's error classes ("deadlock", "busy", …).
func Classifier(db *racefree.DB) func(error) string {
	return func(err error) string { return db.Classify(err).Class.String() }
}

// Work is what one worker process of the scaling phase does: it opens its
// goroutines' connections, waits for the start (startAt), calls op for d
// from goroutines goroutines and returns what they measured; an error
// only when the start could not be awaited (not when ctx ended).
func Work(ctx context.Context, db *racefree.DB, op Op, goroutines int, startAt lab.Start, d time.Duration, seed uint64) (lab.Part, error) {
	// Open every goroutine's connection before the start, so that the
	// first calls race each other rather than the connection handshakes;
	// with a bounded pool, as many as it holds (asking for more would
	// wait forever, since none is returned until all are open).
	n := goroutines
	if limit := db.SQL().Stats().MaxOpenConnections; limit > 0 {
		n = min(n, limit)
	}
	var warm sync.WaitGroup
	conns := make([]*sql.Conn, n)
	for i := range conns {
		warm.Go(func() { conns[i], _ = db.SQL().Conn(ctx) })
	}
	warm.Wait()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	start, err := startAt(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return lab.Part{Interrupted: true}, nil
		}
		return lab.Part{}, err
	}
	select {
	case <-ctx.Done():
		return lab.Part{Interrupted: true}, nil
	case <-time.After(time.Until(start)):
	}
	return Segment(ctx, op, NewWorkers(goroutines, seed), d, Classifier(db)), nil
}

// PoolSize is the connection pool a process running goroutines goroutines
// gets: one connection each, up to limit, plus two for the few calls that
// need a second connection. Goroutines beyond the limit wait for a
// connection, as they do in an application with a bounded pool; without a
// bound, 256 goroutines would exceed a default server's connection limit.
func PoolSize(goroutines, limit int) int {
	return min(goroutines, limit) + 2
}
