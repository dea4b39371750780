package lab

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// OpTimeout bounds one call. Calls are not canceled when the run ends or
// is interrupted — a call cut off halfway would leave the database in a
// state no caller asked for and spoil the invariant check — so this is what
// stops a call that hangs.
const OpTimeout = 30 * time.Second

// Part is what one worker process measured.
type Part struct {
	// Ops counts calls that finished, with or without an error.
	Ops int64 `json:"ops"`
	// OK counts calls that returned no error.
	OK int64 `json:"ok"`
	// Errors counts the errors returned to callers, by class.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Samples holds the first error message seen for each class.
	Samples map[string]string `json:"samples,omitempty"`
	// Hist holds the latency of every finished call.
	Hist Hist `json:"hist"`
	// Elapsed is the time from the common start to the last call's end.
	Elapsed time.Duration `json:"elapsed"`
	// Interrupted reports that the run was stopped before its end.
	Interrupted bool `json:"interrupted,omitempty"`
	// Events counts what the lab noted besides errors: how each ambiguous
	// commit was resolved, for example.
	Events map[string]int64 `json:"events,omitempty"`
	// InFlight counts calls that began and never finished because their
	// process died: their callers never learned the outcome.
	InFlight int64 `json:"in_flight,omitempty"`
	// ConnsInUse is the number of the process's pooled connections still
	// in use once all its workers had stopped: connections leaked by the
	// code under test (a transaction, rows or a *sql.Conn never closed).
	ConnsInUse int `json:"conns_in_use,omitempty"`
}

// Merge adds another process's (or worker's) measurements to p.
func (p *Part) Merge(o Part) {
	p.Ops += o.Ops
	p.OK += o.OK
	for c, n := range o.Errors {
		if p.Errors == nil {
			p.Errors = make(map[string]int64)
		}
		p.Errors[c] += n
	}
	for c, s := range o.Samples {
		if p.Samples == nil {
			p.Samples = make(map[string]string)
		}
		if _, ok := p.Samples[c]; !ok {
			p.Samples[c] = s
		}
	}
	for e, n := range o.Events {
		if p.Events == nil {
			p.Events = make(map[string]int64)
		}
		p.Events[e] += n
	}
	p.Hist.Merge(o.Hist)
	p.Elapsed = max(p.Elapsed, o.Elapsed)
	p.Interrupted = p.Interrupted || o.Interrupted
	p.InFlight += o.InFlight
	p.ConnsInUse += o.ConnsInUse
}

// PartFromTally is what a process that died without reporting had done,
// as its tally file tells: the counts are exact, the latencies are lost.
func PartFromTally(c TallyCounts) Part {
	p := Part{Ops: c.OK + c.Failed, OK: c.OK, InFlight: c.InFlight()}
	if len(c.Errors) > 0 {
		p.Errors, p.Samples = c.Errors, c.Samples
	}
	if len(c.Events) > 0 {
		p.Events = c.Events
	}
	return p
}

// ErrorCount is the number of errors returned to callers.
func (p *Part) ErrorCount() int64 {
	var n int64
	for _, c := range p.Errors {
		n += c
	}
	return n
}

// Work runs workers goroutines of spec's strategy against db from the
// start (waiting for it once its connections are open) until start+d, and
// returns what they measured. A process that starts late (a replacement
// for a killed one) begins at once and still stops at start+d; keys rotate
// from start in every process alike. Every goroutine makes at least one
// call, even one that begins after the end: a starved goroutine then shows
// as slow, not as absent. When ctx ends early, workers stop starting
// calls, finish the ones in flight and Work returns what was measured,
// with Interrupted set. Each call is also counted in tally (which may be
// nil), which outlives the process.
func Work(ctx context.Context, db *racefree.DB, spec Spec, workers int, startAt Start, d time.Duration, seed uint64, tally *Tally) (Part, error) {
	if err := CheckSupported(db.Dialect(), spec.Scenario, spec.Strategy); err != nil {
		return Part{}, err
	}
	if workers < 1 || spec.Keys < 1 || (spec.Scenario == "transfer" && spec.Keys < 2) || d <= 0 {
		return Part{}, fmt.Errorf("lab: work: need workers, keys and a duration, got %d, %d, %v", workers, spec.Keys, d)
	}
	op := opFor(spec.Scenario, spec.Strategy)
	table, err := db.Dialect().Quote(spec.Table)
	if err != nil {
		return Part{}, fmt.Errorf("quote table: %w", err)
	}
	// Open every worker's connection before the start, so that the first
	// calls race each other rather than the connection handshakes.
	db.SQL().SetMaxIdleConns(workers + 2)
	var warm sync.WaitGroup
	conns := make([]*sql.Conn, workers)
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
			return Part{Interrupted: true}, nil
		}
		return Part{}, err
	}
	select {
	case <-ctx.Done():
		return Part{Interrupted: true}, nil
	case <-time.After(time.Until(start)):
	}
	begin := time.Now()
	if begin.Before(start) {
		begin = start
	}
	deadline := start.Add(d)
	var (
		mu    sync.Mutex // guards total
		total Part
		lock  sync.Mutex // the mutex strategy's process-wide lock
	)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			w := &worker{
				db: db, sql: db.SQL(), d: db.Dialect(), spec: &spec, table: table,
				rng:    rand.New(rand.NewPCG(seed, uint64(i))),
				mutex:  &lock,
				start:  start,
				cache:  make(map[string]string),
				rotate: spec.Rotate,
				tally:  tally,
				id:     fmt.Sprintf("%x-%d", seed, i),
			}
			p := &w.part
			for first := true; ctx.Err() == nil && (first || time.Now().Before(deadline)); first = false {
				opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
				tally.Begin()
				t0 := time.Now()
				err := op(opCtx, w)
				p.Hist.Record(time.Since(t0))
				cancel()
				p.Ops++
				if err == nil {
					p.OK++
					tally.Done("", "")
					continue
				}
				class, msg := classOf(db, err), firstLine(err.Error())
				tally.Done(class, msg)
				if p.Errors == nil {
					p.Errors, p.Samples = make(map[string]int64), make(map[string]string)
				}
				p.Errors[class]++
				if _, ok := p.Samples[class]; !ok {
					p.Samples[class] = msg
				}
			}
			p.Elapsed = time.Since(begin)
			mu.Lock()
			total.Merge(*p)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.Interrupted = ctx.Err() != nil && time.Now().Before(deadline)
	total.ConnsInUse = db.SQL().Stats().InUse
	return total, nil
}

// classOf names the class of an error a call returned, as the tables show
// it.
func classOf(db *racefree.DB, err error) string {
	if errors.Is(err, racefree.ErrCommitUnknown) {
		return dialect.ClassCommitUnknown.String()
	}
	var re *racefree.RetryError
	if errors.As(err, &re) {
		return "retries exhausted"
	}
	if errors.Is(err, errNotFoundAfterConflict) {
		return "not found after duplicate"
	}
	if errors.Is(err, errRetriesSpent) {
		return "retries exhausted"
	}
	ce := db.Classify(err)
	if errors.Is(err, errAtCommit) && ce.Class != dialect.ClassOther {
		// A conflict found at COMMIT: on Galera, certification failure.
		return ce.Class.String() + " at commit"
	}
	if ce.Class == dialect.ClassOther && ce.Code != "" {
		// Unclassified server errors are rare and telling: keep the
		// engine's code, e.g. PostgreSQL's 53200 when SERIALIZABLE runs
		// out of memory to track conflicts.
		return "other (" + ce.Code + ")"
	}
	return ce.Class.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

var (
	// errNotFoundAfterConflict: the INSERT said the row exists and the
	// SELECT after it found nothing (a snapshot older than the winner).
	errNotFoundAfterConflict = errors.New("lab: duplicate key, then not found")
	// errRetriesSpent: the hand-written serializable loop gave up.
	errRetriesSpent = errors.New("lab: serializable retries spent")
	// errAtCommit marks an error that COMMIT returned.
	errAtCommit = errors.New("lab: at commit")
)

// commitErr marks err as returned by COMMIT, keeping its chain for
// classification.
func commitErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("commit: %w (%w)", err, errAtCommit)
}

// opFunc is one call of a strategy: one get-or-create, one transfer, one
// increment, one link.
type opFunc func(ctx context.Context, w *worker) error

// worker is one goroutine's state. It is not shared.
type worker struct {
	db     *racefree.DB
	sql    *sql.DB
	d      dialect.Dialect
	spec   *Spec
	table  string // quoted
	rng    *rand.Rand
	mutex  *sync.Mutex
	start  time.Time
	rotate time.Duration
	cache  map[string]string // query with ? → query with the engine's placeholders
	tally  *Tally            // counts that outlive the process; may be nil
	id     string            // unique among all workers of a run: process seed and goroutine
	seq    int64             // calls made, for idempotency keys
	part   Part              // what this worker measured
}

// event counts something the lab noted, in the worker's part and its
// process's tally.
func (w *worker) event(name string) {
	w.tally.Event(name)
	if w.part.Events == nil {
		w.part.Events = make(map[string]int64)
	}
	w.part.Events[name]++
}

// q returns query with {t} replaced by the table and each ? by the engine's
// placeholder.
func (w *worker) q(query string) string {
	if s, ok := w.cache[query]; ok {
		return s
	}
	s := strings.ReplaceAll(query, "{t}", w.table)
	if w.d.Name() == "postgres" {
		var b strings.Builder
		n := 0
		for _, r := range s {
			if r == '?' {
				n++
				b.WriteString(w.d.Placeholder(n))
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	w.cache[query] = s
	return s
}

// round is the number of the key set in use: it moves on every Rotate, at
// the same moment in every process, so that each new key set starts a new
// storm.
func (w *worker) round() int {
	if w.rotate <= 0 {
		return 0
	}
	return int(time.Since(w.start) / w.rotate)
}

// key picks one of the current round's Keys keys.
func (w *worker) key() int { return w.rng.IntN(w.spec.Keys) }

func itoa(n int) string { return strconv.Itoa(n) }

// querier is what *sql.DB, *sql.Tx and *sql.Conn share: the lab's
// hand-written strategies run on database/sql directly.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a plain transaction, the way people write one: begin,
// work, commit, roll back on error, no retry.
func (w *worker) inTx(ctx context.Context, opts *sql.TxOptions, fn func(q querier) error) error {
	tx, err := w.sql.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return commitErr(tx.Commit())
}

// serializable runs fn in SERIALIZABLE transactions until one commits,
// retrying serialization failures, deadlocks and busy errors up to
// serialAttempts times: the retry loop people write by hand.
func (w *worker) serializable(ctx context.Context, fn func(q querier) error) error {
	opts := &sql.TxOptions{Isolation: sql.LevelSerializable}
	if w.d.Name() == "sqlite" {
		opts = nil // SQLite is always serializable; its driver refuses the option
	}
	var err error
	for range serialAttempts {
		if err = w.inTx(ctx, opts, fn); err == nil {
			return nil
		}
		switch w.db.Classify(err).Class {
		case dialect.ClassSerialization, dialect.ClassDeadlock, dialect.ClassBusy:
			continue
		}
		return err
	}
	return fmt.Errorf("%w: %w", errRetriesSpent, err)
}

// tableLock runs fn with the whole table locked against every other
// session: LOCK TABLE in a transaction (PostgreSQL), LOCK TABLES on one
// connection (MySQL), or a write transaction (SQLite, whose IMMEDIATE
// transaction already excludes every other writer).
func (w *worker) tableLock(ctx context.Context, fn func(q querier) error) error {
	switch w.d.Name() {
	case "postgres":
		return w.inTx(ctx, nil, func(q querier) error {
			if _, err := q.ExecContext(ctx, w.q("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE")); err != nil {
				return err
			}
			return fn(q)
		})
	case "mysql":
		conn, err := w.sql.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, w.q("LOCK TABLES {t} WRITE")); err != nil {
			return err
		}
		ferr := fn(conn)
		if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // drop a connection left locked
			return errors.Join(ferr, err)
		}
		return ferr
	default:
		return w.inTx(ctx, nil, fn)
	}
}

// opFor returns the call of a strategy in a scenario, or nil when the
// strategy does not apply.
func opFor(scenario, strategy string) opFunc {
	switch scenario {
	case "goc":
		return rowOps(gocKeyed, strategy)
	case "m2m":
		return rowOps(m2mKeyed, strategy)
	case "transfer":
		return transferOps[strategy]
	case "counter":
		return counterOps[strategy]
	}
	return nil
}
