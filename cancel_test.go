package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// stepper is a session.Pool that counts every call racefree makes through
// the session contract — statements, BEGIN, COMMIT, ROLLBACK, taking and
// releasing connections — and cancels the operation's context at one of
// them: just before the call (before), or while it runs (during).
type stepper struct {
	session.Pool
	mu     sync.Mutex // guards the fields below
	n      int        // calls so far
	at     int        // the call to cancel at; 0: none
	during bool
	cancel context.CancelFunc
	hit    bool // the cancel happened
}

// step counts a call and cancels when it is the chosen one.
func (s *stepper) step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.n != s.at || s.cancel == nil {
		return
	}
	s.hit = true
	if s.during {
		time.AfterFunc(time.Duration(rand.IntN(300))*time.Microsecond, s.cancel)
		return
	}
	s.cancel()
}

// arm makes the next operation's at-th call cancel.
func (s *stepper) arm(at int, during bool, cancel context.CancelFunc) {
	s.mu.Lock()
	s.n, s.at, s.during, s.cancel, s.hit = 0, at, during, cancel, false
	s.mu.Unlock()
}

func (s *stepper) calls() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.hit
}

func (s *stepper) Exec(ctx context.Context, q string, args ...any) (session.Result, error) {
	s.step()
	return s.Pool.Exec(ctx, q, args...)
}
func (s *stepper) Query(ctx context.Context, q string, args ...any) (session.Rows, error) {
	s.step()
	return s.Pool.Query(ctx, q, args...)
}
func (s *stepper) QueryRow(ctx context.Context, q string, args ...any) session.Row {
	s.step()
	return s.Pool.QueryRow(ctx, q, args...)
}
func (s *stepper) Begin(ctx context.Context, o session.TxOptions) (session.Tx, error) {
	s.step()
	tx, err := s.Pool.Begin(ctx, o)
	if err != nil {
		return nil, err
	}
	return &stepTx{Tx: tx, s: s}, nil
}
func (s *stepper) Acquire(ctx context.Context) (session.Conn, error) {
	s.step()
	c, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &stepConn{Conn: c, s: s}, nil
}

type stepConn struct {
	session.Conn
	s *stepper
}

func (c *stepConn) Exec(ctx context.Context, q string, args ...any) (session.Result, error) {
	c.s.step()
	return c.Conn.Exec(ctx, q, args...)
}
func (c *stepConn) Query(ctx context.Context, q string, args ...any) (session.Rows, error) {
	c.s.step()
	return c.Conn.Query(ctx, q, args...)
}
func (c *stepConn) QueryRow(ctx context.Context, q string, args ...any) session.Row {
	c.s.step()
	return c.Conn.QueryRow(ctx, q, args...)
}
func (c *stepConn) Begin(ctx context.Context, o session.TxOptions) (session.Tx, error) {
	c.s.step()
	tx, err := c.Conn.Begin(ctx, o)
	if err != nil {
		return nil, err
	}
	return &stepTx{Tx: tx, s: c.s}, nil
}
func (c *stepConn) Release() error { c.s.step(); return c.Conn.Release() }
func (c *stepConn) Discard() error {
	if d, ok := c.Conn.(session.Discarder); ok {
		return d.Discard()
	}
	return c.Conn.Release()
}

type stepTx struct {
	session.Tx
	s *stepper
}

func (t *stepTx) Exec(ctx context.Context, q string, args ...any) (session.Result, error) {
	t.s.step()
	return t.Tx.Exec(ctx, q, args...)
}
func (t *stepTx) Query(ctx context.Context, q string, args ...any) (session.Rows, error) {
	t.s.step()
	return t.Tx.Query(ctx, q, args...)
}
func (t *stepTx) QueryRow(ctx context.Context, q string, args ...any) session.Row {
	t.s.step()
	return t.Tx.QueryRow(ctx, q, args...)
}
func (t *stepTx) Commit(ctx context.Context) error   { t.s.step(); return t.Tx.Commit(ctx) }
func (t *stepTx) Rollback(ctx context.Context) error { t.s.step(); return t.Tx.Rollback(ctx) }

// cancelOp is one operation the test cancels at every step.
type cancelOp struct {
	name  string
	skip  func(engine string) bool
	setup func(t *testing.T, base *racefree.DB) any
	run   func(ctx context.Context, db *racefree.DB, state any, key string) error
}

// Context cancellation at any point of an operation — before or while
// any of its calls to the server runs — leaves nothing behind: the
// operation returns (success, the context's error, or an unknown commit
// when the cancel cut a COMMIT in flight); every connection goes back to
// the pool out of any transaction, holding no named lock, or is closed;
// the server keeps no transaction and no lock of the test's sessions; and
// once the database is closed no goroutine is left running.
func TestCancel_AtEveryStep(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	ops := []cancelOp{
		{name: "RunInTx", setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.CreateTable(t, base, "cancel_tx", "k VARCHAR(64) PRIMARY KEY, n INT NOT NULL")
		}, run: func(ctx context.Context, db *racefree.DB, st any, key string) error {
			table := st.(string)
			return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (k, n) VALUES ('"+key+"', 1)"); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE "+table+" SET n = n + 1 WHERE k = '"+key+"'")
				return err
			})
		}},
		{name: "GetOrCreate", setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.CreateTable(t, base, "cancel_goc", "id {{id}}, k {{text}} NOT NULL, CONSTRAINT {{table}}_k UNIQUE (k)")
		}, run: func(ctx context.Context, db *racefree.DB, st any, key string) error {
			_, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, st.(string), racefree.Values{"k": key}, nil, racefree.Options{NoCoalesce: true})
			return err
		}},
		{name: "GetOrCreateLock", setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.CreateTable(t, base, "cancel_gocl", "id {{id}}, k {{text}} NOT NULL")
		}, run: func(ctx context.Context, db *racefree.DB, st any, key string) error {
			_, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, st.(string), racefree.Values{"k": key}, nil, racefree.Options{NoCoalesce: true})
			return err
		}},
		{name: "RunOnce", setup: func(t *testing.T, base *racefree.DB) any {
			return [2]any{onceTable(t, base), testdb.CreateTable(t, base, "cancel_once", "k VARCHAR(64) PRIMARY KEY")}
		}, run: func(ctx context.Context, db *racefree.DB, st any, key string) error {
			s := st.([2]any)
			_, _, err := racefree.RunOnce(ctx, db, key, s[0].(racefree.OnceOptions), func(ctx context.Context, tx *racefree.Tx) (string, error) {
				_, err := tx.Exec(ctx, "INSERT INTO "+s[1].(string)+" (k) VALUES ('"+key+"')")
				return key, err
			})
			return err
		}},
		{name: "LockNamed", setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.UniqueName("cancel_lock")
		}, run: func(ctx context.Context, db *racefree.DB, st any, _ string) error {
			return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				return racefree.LockNamed(ctx, tx, st.(string), racefree.LockOptions{})
			})
		}},
		{name: "LockNamedTimeout", setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.UniqueName("cancel_lockt")
		}, run: func(ctx context.Context, db *racefree.DB, st any, _ string) error {
			return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				return racefree.LockNamed(ctx, tx, st.(string), racefree.LockOptions{Wait: racefree.Wait{Timeout: time.Second}})
			})
		}},
		{name: "LockSession", skip: func(engine string) bool { return engine == "sqlite" }, setup: func(t *testing.T, base *racefree.DB) any {
			return testdb.UniqueName("cancel_slock")
		}, run: func(ctx context.Context, db *racefree.DB, st any, _ string) error {
			l, err := racefree.AcquireSessionLock(ctx, db, st.(string), racefree.LockOptions{})
			if err != nil {
				return err
			}
			return errors.Join(l.Check(ctx), l.Release(ctx))
		}},
	}
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 5*time.Minute)
		dsn := e.DSN(t)
		tag := testdb.UniqueName("cancel")
		if e.Name == "postgres" {
			dsn += "&application_name=" + tag
		}
		base, err := racefree.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		base.SQL().SetMaxOpenConns(3)
		st := &stepper{Pool: session.SQLPool{DB: base.SQL()}}
		db, err := racefree.NewSession(context.Background(), st, base.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.skip != nil && op.skip(e.Name) {
				continue
			}
			t.Run(op.name, func(t *testing.T) {
				state := op.setup(t, base)
				// A first run makes the catalog, plans and tables; the
				// second counts the calls of a run.
				seq := 0
				key := func() string { seq++; return fmt.Sprintf("%s_%d", tag, seq) }
				if err := op.run(context.Background(), db, state, key()); err != nil {
					t.Fatal(err)
				}
				st.arm(0, false, nil)
				if err := op.run(context.Background(), db, state, key()); err != nil {
					t.Fatal(err)
				}
				steps, _ := st.calls()
				canceled := 0
				for at := 1; at <= steps; at++ {
					for _, during := range []bool{false, true, true} {
						ctx, cancel := context.WithCancel(context.Background())
						st.arm(at, during, cancel)
						err := op.run(ctx, db, state, key())
						cancel()
						if _, hit := st.calls(); !hit {
							t.Fatalf("step %d of %d never came", at, steps)
						}
						if err != nil {
							canceled++
							if !errors.Is(err, context.Canceled) && !errors.Is(err, racefree.ErrCanceled) && !errors.Is(err, racefree.ErrCommitUnknown) {
								t.Errorf("cancel at step %d (during %v): %v, want the context's error or an unknown commit", at, during, err)
							}
						}
						mustBeClean(t, e.Name, base, tag, fmt.Sprintf("cancel at step %d of %d (during %v)", at, steps, during))
					}
				}
				st.arm(0, false, nil)
				if canceled == 0 {
					t.Errorf("%d steps canceled and not one operation failed: did the cancel reach it?", steps)
				}
				t.Logf("%d steps, %d canceled runs", steps, canceled)
			})
		}
		db.Close()
		base.Close()
	})
	goleak.VerifyNone(t, opts...)
}

// mustBeClean fails t unless every connection of base's pool is back,
// out of any transaction and holding no named lock, and (PostgreSQL) no
// session tagged tag holds a transaction or lock.
func mustBeClean(t *testing.T, engine string, base *racefree.DB, tag, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for base.SQL().Stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d connections still in use", when, base.SQL().Stats().InUse)
		}
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()
	n := base.SQL().Stats().OpenConnections
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := base.SQL().Conn(ctx)
		if err != nil {
			t.Fatalf("%s: take connection: %v", when, err)
		}
		conns = append(conns, c)
		var inTx bool
		var locks int
		switch engine {
		case "postgres":
			// SAVEPOINT outside a transaction block fails (25P01).
			if _, err = c.ExecContext(ctx, "SAVEPOINT probe"); err == nil {
				inTx = true
			}
			err = c.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()").Scan(&locks)
		case "mysql":
			err = c.QueryRowContext(ctx, "SELECT @@in_transaction, 0").Scan(&inTx, &locks)
			if err != nil && strings.Contains(err.Error(), "1193") {
				// TiDB has no @@in_transaction: its transaction's start
				// timestamp is 0 outside one.
				err = c.QueryRowContext(ctx, "SELECT @@tidb_current_ts <> 0, 0").Scan(&inTx, &locks)
			}
		case "sqlite":
			if _, err = c.ExecContext(ctx, "BEGIN IMMEDIATE"); err == nil {
				_, err = c.ExecContext(ctx, "ROLLBACK")
			} else if strings.Contains(err.Error(), "within a transaction") {
				inTx, err = true, nil
			}
		}
		if err != nil {
			t.Fatalf("%s: check connection: %v", when, err)
		}
		if inTx || locks != 0 {
			t.Fatalf("%s: a pooled connection is in a transaction (%v) or holds %d named locks", when, inTx, locks)
		}
	}
	if engine != "postgres" {
		return
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	for {
		var open, locks int
		err := base.SQL().QueryRowContext(ctx, "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'),"+
			" (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = $1 AND l.locktype = 'advisory')", tag).Scan(&open, &locks)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if open == 0 && locks == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server keeps %d open transactions and %d advisory locks of the test's sessions", when, open, locks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
