package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// fault is what faultPool does to a statement.
type fault int

const (
	noFault    fault = iota
	lostBefore       // the connection breaks before the statement reaches the server
	lostAfter        // the statement runs, and its answer is lost
)

// faultPool is a session.Pool that loses the answer of chosen statements
// run on the pool itself, as a connection cut under them would: the
// statement runs (lostAfter) or not (lostBefore), and the caller gets a
// connection reset either way. Statements in transactions and on pinned
// connections pass untouched.
type faultPool struct {
	session.Pool
	mu     sync.Mutex               // guards plan and seen
	plan   func(query string) fault // nil: no faults yet
	seen   []string
	faults int
}

func (p *faultPool) decide(query string) fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plan == nil {
		return noFault
	}
	p.seen = append(p.seen, query)
	f := p.plan(query)
	if f != noFault {
		p.faults++
	}
	return f
}

func (p *faultPool) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	switch p.decide(query) {
	case lostBefore:
		return nil, lost
	case lostAfter:
		if _, err := p.Pool.Exec(ctx, query, args...); err != nil {
			return nil, err
		}
		return nil, lost
	}
	return p.Pool.Exec(ctx, query, args...)
}

func (p *faultPool) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	switch p.decide(query) {
	case lostBefore:
		return errRow{lost}
	case lostAfter:
		rows, err := p.Pool.Query(ctx, query, args...)
		if err != nil {
			return errRow{err}
		}
		for rows.Next() {
		}
		rows.Close()
		return errRow{lost}
	}
	return p.Pool.QueryRow(ctx, query, args...)
}

func (p *faultPool) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	switch p.decide(query) {
	case lostBefore:
		return nil, lost
	case lostAfter:
		rows, err := p.Pool.Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
		}
		rows.Close()
		return nil, lost
	}
	return p.Pool.Query(ctx, query, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// once returns a plan that faults the first statement that begins with
// verb and names table ("" for any).
func once(verb, table string, f fault) func(string) fault {
	done := false
	return func(query string) fault {
		if !done && strings.HasPrefix(query, verb) && strings.Contains(query, table) {
			done = true
			return f
		}
		return noFault
	}
}

// A get-or-create on the pool whose statement lost its connection runs
// again and settles what the lost one left, and says exactly what it
// knows about `created`: a lost read or a lost INSERT that had not run
// ends in created true; a lost INSERT that had run ends in the row, created
// false, and an error matching ErrCreatedUnknown and ErrCommitUnknown.
func TestGetOrCreate_RecoversLostConnection(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			testdb.Watchdog(t, time.Minute)
			base := e.Open(t)
			table := testdb.CreateTable(t, base, "goc_lost", "id {{id}}, k {{text}} NOT NULL, v INT, CONSTRAINT {{table}}_k UNIQUE (k)")
			for _, tc := range []struct {
				name        string
				plan        func(string) fault
				wantCreated bool
				wantUnknown bool
			}{
				{name: "catalog read lost", plan: once("SELECT", "", lostBefore), wantCreated: true},
				{name: "lookup read lost", plan: once("SELECT", table, lostBefore), wantCreated: true},
				{name: "insert lost before it ran", plan: once("INSERT", table, lostBefore), wantCreated: true},
				{name: "insert lost after it ran", plan: once("INSERT", table, lostAfter), wantUnknown: true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					fp := &faultPool{Pool: session.SQLPool{DB: base.SQL()}}
					db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
					if err != nil {
						t.Fatal(err)
					}
					fp.plan = tc.plan
					key := testdb.UniqueName("k")
					row, created, err := racefree.GetOrCreate[racefree.Values](context.Background(), db, table,
						racefree.Values{"k": key}, racefree.Values{"v": 7}, racefree.Options{})
					if fp.faults != 1 {
						t.Fatalf("%d faults injected, want 1 (statements %q)", fp.faults, fp.seen)
					}
					if created != tc.wantCreated {
						t.Errorf("created = %v, want %v (err %v)", created, tc.wantCreated, err)
					}
					if got := errors.Is(err, racefree.ErrCreatedUnknown) && errors.Is(err, racefree.ErrCommitUnknown); got != tc.wantUnknown {
						t.Errorf("err = %v, want created-unknown: %v", err, tc.wantUnknown)
					}
					if !tc.wantUnknown && err != nil {
						t.Errorf("err = %v", err)
					}
					if row["k"] != key || row["v"] == nil {
						t.Errorf("row = %v, want the row of %s", row, key)
					}
					if n := testdb.QueryInt(t, base, "SELECT COUNT(*) FROM "+table+" WHERE k = '"+key+"'"); n != 1 {
						t.Errorf("%d rows for the key, want 1", n)
					}
				})
			}
		})
	}
}

// commitFaultPool is a session.Pool whose transactions' COMMITs lose their
// answer as plan says: the COMMIT runs (lostAfter) or the transaction is
// rolled back instead (lostBefore), and the caller gets a connection reset
// either way — what a connection cut around COMMIT does.
type commitFaultPool struct {
	session.Pool
	mu     sync.Mutex // guards plan and faults
	plan   fault      // for the next COMMIT, then noFault
	faults int
}

func (p *commitFaultPool) next() fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.plan
	if f != noFault {
		p.plan = noFault
		p.faults++
	}
	return f
}

func (p *commitFaultPool) Acquire(ctx context.Context) (session.Conn, error) {
	c, err := p.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return commitFaultConn{c, p}, nil
}

func (p *commitFaultPool) Begin(ctx context.Context, opts session.TxOptions) (session.Tx, error) {
	tx, err := p.Pool.Begin(ctx, opts)
	if err != nil {
		return nil, err
	}
	return commitFaultTx{tx, p}, nil
}

type commitFaultConn struct {
	session.Conn
	p *commitFaultPool
}

func (c commitFaultConn) Begin(ctx context.Context, opts session.TxOptions) (session.Tx, error) {
	tx, err := c.Conn.Begin(ctx, opts)
	if err != nil {
		return nil, err
	}
	return commitFaultTx{tx, c.p}, nil
}

type commitFaultTx struct {
	session.Tx
	p *commitFaultPool
}

func (t commitFaultTx) Commit(ctx context.Context) error {
	switch t.p.next() {
	case lostBefore:
		_ = t.Tx.Rollback(ctx)
		return lost
	case lostAfter:
		if err := t.Tx.Commit(ctx); err != nil {
			return err
		}
		return lost
	}
	return t.Tx.Commit(ctx)
}

// A get-or-create whose strategy runs a transaction (the lock strategy),
// on the pool, whose COMMIT lost its answer runs again — it is idempotent
// — and says exactly what it knows: a COMMIT that had not happened ends in
// created true; one that had ends in the row, created false and
// ErrCreatedUnknown. Never an error that leaves the caller guessing
// whether the row exists.
func TestGetOrCreate_RecoversLostCommit(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			defer testdb.Watchdog(t, time.Minute)()
			base := e.Open(t)
			// No unique index on k: the lock strategy, in a transaction.
			table := testdb.CreateTable(t, base, "goc_lostcommit", "id {{id}}, k {{text}} NOT NULL, v INT")
			for _, tc := range []struct {
				name        string
				f           fault
				wantCreated bool
				wantUnknown bool
			}{
				{name: "commit lost before it ran", f: lostBefore, wantCreated: true},
				{name: "commit lost after it ran", f: lostAfter, wantUnknown: true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					fp := &commitFaultPool{Pool: session.SQLPool{DB: base.SQL()}}
					db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
					if err != nil {
						t.Fatal(err)
					}
					key := testdb.UniqueName("k")
					fp.plan = tc.f
					row, created, err := racefree.GetOrCreate[racefree.Values](context.Background(), db, table,
						racefree.Values{"k": key}, racefree.Values{"v": 7}, racefree.Options{})
					if fp.faults != 1 {
						t.Fatalf("%d faults injected, want 1", fp.faults)
					}
					if created != tc.wantCreated {
						t.Errorf("created = %v, want %v (err %v)", created, tc.wantCreated, err)
					}
					if got := errors.Is(err, racefree.ErrCreatedUnknown); got != tc.wantUnknown {
						t.Errorf("err = %v, want created-unknown: %v", err, tc.wantUnknown)
					}
					if !tc.wantUnknown && err != nil {
						t.Errorf("err = %v", err)
					}
					if row["k"] != key {
						t.Errorf("row = %v, want the row of %s", row, key)
					}
					if n := testdb.QueryInt(t, base, "SELECT COUNT(*) FROM "+table+" WHERE k = '"+key+"'"); n != 1 {
						t.Errorf("%d rows for the key, want 1", n)
					}
				})
			}
		})
	}
}

// A burst of calls on a DB that has not read a table yet reads its catalog
// once: the calls share the read instead of each sending it (a service's
// first requests after a deploy).
func TestGetOrCreate_ColdBurstReadsCatalogOnce(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, time.Minute)()
		base := e.Open(t)
		table := testdb.CreateTable(t, base, "goc_cold", "id {{id}}, k {{text}} NOT NULL, CONSTRAINT {{table}}_k UNIQUE (k)")
		fp := &faultPool{Pool: session.SQLPool{DB: base.SQL()}}
		db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		fp.plan = func(string) fault { return noFault } // record from here on
		const callers = 32
		start := make(chan struct{})
		errs := make(chan error, callers)
		for i := range callers {
			go func() {
				<-start
				_, _, err := racefree.GetOrCreate[racefree.Values](context.Background(), db, table, racefree.Values{"k": fmt.Sprint("k", i%4)}, nil, racefree.Options{})
				errs <- err
			}()
		}
		close(start)
		for range callers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		fp.mu.Lock()
		defer fp.mu.Unlock()
		first, reads := fp.seen[0], 0
		for _, q := range fp.seen {
			if q == first {
				reads++
			}
		}
		if reads != 1 {
			t.Fatalf("the catalog query was sent %d times by %d cold callers, want once: %.80q", reads, callers, first)
		}
		t.Logf("%d cold callers, %d statements, the catalog read once", callers, len(fp.seen))
	})
}
