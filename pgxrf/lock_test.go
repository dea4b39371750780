package pgxrf_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/lockkey"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
)

// Named locks through pgx (namedlock_test.go and namedlock_session_test.go
// on the database/sql path): LockNamed inside pgxrf.RunInTx across
// processes, and session locks on pgxpool's connections, which racefree
// closes instead of pooling when it cannot tell whether they hold a lock.

const (
	nlProcs      = 4
	nlGoroutines = 32
	nlIncrements = 4
	nlPool       = 4
)

// lockedIncrement reads the counter and writes it plus one, inside
// pgxrf.RunInTx at READ COMMITTED, under LockNamed when lock is set.
func lockedIncrement(ctx context.Context, db *racefree.DB, table, name string, lock bool) error {
	return pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		if lock {
			if err := racefree.LockNamed(ctx, pgxrf.WrapTx(db, tx, nil), name, racefree.LockOptions{}); err != nil {
				return err
			}
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT n FROM "+table+" WHERE id = 1").Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE "+table+" SET n = $1 WHERE id = 1", n+1)
		return err
	})
}

// runIncrements runs nlGoroutines × nlIncrements increments and returns
// the errors.
func runIncrements(ctx context.Context, db *racefree.DB, table, name string, lock bool) []error {
	var mu sync.Mutex // guards errs
	var errs []error
	var wg sync.WaitGroup
	for range nlGoroutines {
		wg.Go(func() {
			for range nlIncrements {
				if err := lockedIncrement(ctx, db, table, name, lock); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func TestLockNamed_CounterAcrossProcesses(t *testing.T) {
	defer testdb.Watchdog(t, 3*time.Minute)()
	e := pg(t)
	check := e.Open(t)
	name := testdb.UniqueName("pgxrf_counter") + strings.Repeat("/long", 40)
	for _, mode := range []string{"locked", "unlocked"} {
		t.Run(mode, func(t *testing.T) {
			table := counterRows(t, check, 1)
			results := proctest.Run(t, nlProcs, "TestLockNamedCounterChild", map[string]string{
				"dsn": e.DSN(t), "table": table, "lock": name, "mode": mode,
			}, 150*time.Second)
			failed := sumReported(results, "failed")
			want := int64(nlProcs*nlGoroutines*nlIncrements) - failed
			got := testdb.QueryInt(t, check, "SELECT n FROM "+table+" WHERE id = 1")
			t.Logf("%s: counter %d after %d increments (%d failed)", mode, got, want, failed)
			switch mode {
			case "locked":
				if failed != 0 || got != want {
					t.Fatalf("counter %d, want %d: %d increments lost, %d failed", got, want, want-got, failed)
				}
			case "unlocked":
				if got >= want {
					t.Fatalf("without the lock no increment was lost (%d of %d): the test shows nothing", got, want)
				}
			}
		})
	}
}

// TestLockNamedCounterChild is one process of TestLockNamed_CounterAcrossProcesses.
func TestLockNamedCounterChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 140*time.Second)()
	db := mustDB(t, mustPool(t, args.Values["dsn"], nlPool, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 130*time.Second)
	defer cancel()
	errs := runIncrements(ctx, db, args.Values["table"], args.Values["lock"], args.Values["mode"] == "locked")
	for _, err := range errs {
		fmt.Printf("increment failed: %v\n", err)
	}
	proctest.Report("failed", len(errs))
}

// heldBy returns how many sessions hold the advisory lock of name.
func heldBy(tb testing.TB, check *racefree.DB, name string) int64 {
	tb.Helper()
	return testdb.QueryInt(tb, check, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"+
		" AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295)", lockkey.Key64(name))
}

func TestLockSession_ExcludesAndReleases(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, _ := open(t, 4)
	ctx := context.Background()
	name := testdb.UniqueName("pgxrf_sess")
	l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{})
	must(t, err)
	must(t, l.Check(ctx))
	if n := heldBy(t, check, name); n != 1 {
		t.Fatalf("%d sessions hold the lock, want 1", n)
	}
	if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("Try on a held lock: %v", err)
	}
	if _, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{Wait: racefree.Wait{Timeout: 200 * time.Millisecond}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("Timeout on a held lock: %v", err)
	}
	err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		return racefree.LockNamed(ctx, pgxrf.WrapTx(db, tx, nil), name, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
	})
	if !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("LockNamed while the session lock is held: %v", err)
	}
	must(t, l.Release(ctx))
	if err := l.Check(ctx); !errors.Is(err, racefree.ErrLockLost) {
		t.Fatalf("Held after Unlock: %v", err)
	}
	if n := heldBy(t, check, name); n != 0 {
		t.Fatalf("%d sessions hold the lock after Unlock", n)
	}
}

// A wait ended by ctx leaves the lock state in doubt (the server may grant
// the lock just as the cancel arrives): the pooled connection is closed,
// not returned to the pool.
func TestLockSession_CanceledWaitDiscardsConnection(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, pool := open(t, 2)
	ctx := context.Background()
	name := testdb.UniqueName("pgxrf_cancel")
	h, err := racefree.AcquireSessionLock(ctx, check, name, racefree.LockOptions{})
	must(t, err)
	before := pool.Stat().TotalConns()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := racefree.AcquireSessionLock(cctx, db, name, racefree.LockOptions{}); err == nil {
		t.Fatal("got a held lock")
	}
	if after := pool.Stat().TotalConns(); after != max(before, 1)-1 {
		t.Fatalf("pool has %d connections after the canceled wait (%d before): the in-doubt connection went back", after, before)
	}
	must(t, h.Release(ctx))
	// The discarded connection's server session may still be waiting for
	// the lock: it gets it when the holder lets go, finds its client gone
	// when it answers, and ends, releasing it. Under load that takes more
	// than a moment; what must not happen is a session that keeps it.
	deadline := time.Now().Add(10 * time.Second)
	n := heldBy(t, check, name)
	for n != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = heldBy(t, check, name)
	}
	if n != 0 {
		t.Fatalf("%d sessions hold the lock 10 s after its holder let go", n)
	}
}

// A DB over one *pgx.Conn: the verbs, pgxrf.RunInTx and session locks run
// on that connection; a session lock in doubt closes it.
func TestNewConn(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	e := pg(t)
	check := e.Open(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DSN(t))
	must(t, err)
	defer conn.Close(ctx)
	db, err := pgxrf.NewConn(ctx, conn)
	must(t, err)
	table := testdb.CreateTable(t, check, "pgxrf_conn", usersDDL)
	u, created, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "A"}, racefree.Options{})
	if err != nil || !created {
		t.Fatalf("GetOrCreate: %+v %v %v", u, created, err)
	}
	err = pgxrf.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		_, _, err := racefree.UpdateOrCreate[user](ctx, pgxrf.WrapTx(db, tx, nil), table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "B"}, racefree.Options{})
		return err
	})
	must(t, err)
	if _, _, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "b@x"}, nil, racefree.Options{Strategy: racefree.StrategyLock}); err != nil {
		t.Fatalf("lock strategy on one connection: %v", err)
	}
	name := testdb.UniqueName("pgxrf_conn_lock")
	l, err := racefree.AcquireSessionLock(ctx, db, name, racefree.LockOptions{})
	must(t, err)
	if n := heldBy(t, check, name); n != 1 {
		t.Fatalf("%d sessions hold the lock", n)
	}
	must(t, l.Release(ctx))
	if conn.IsClosed() {
		t.Fatal("Unlock closed the connection")
	}

	// In doubt: the connection is closed, and with it the DB.
	h, err := racefree.AcquireSessionLock(ctx, check, name, racefree.LockOptions{})
	must(t, err)
	defer h.Release(ctx)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := racefree.AcquireSessionLock(cctx, db, name, racefree.LockOptions{}); err == nil {
		t.Fatal("got a held lock")
	}
	if !conn.IsClosed() {
		t.Fatal("the connection whose lock state is in doubt is still open")
	}
	_, _, err = racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "a@x"}, nil, racefree.Options{})
	if !errors.Is(err, racefree.ErrConnection) && !errors.Is(err, racefree.ErrNotSent) {
		t.Fatalf("GetOrCreate on the closed connection: %v, want a connection error", err)
	}
}

// Leases with fencing tokens through pgx: exclusion, renewal, the token
// checked inside pgxrf.RunInTx, release.
func TestLease(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, _, db, _ := open(t, 4)
	ctx := context.Background()
	name := testdb.UniqueName("pgxrf_lease")
	a, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: time.Minute})
	must(t, err)
	if _, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("Try on a held lease: %v", err)
	}
	must(t, a.Renew(ctx))
	check := func(l *racefree.Lease) error {
		return pgxrf.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx pgx.Tx) error {
			return l.Check(ctx, pgxrf.WrapTx(db, tx, nil))
		})
	}
	must(t, check(a))
	must(t, a.Release(ctx))
	b, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}})
	must(t, err)
	if b.Token() <= a.Token() {
		t.Fatalf("token %d after %d: not increasing", b.Token(), a.Token())
	}
	if err := check(a); !errors.Is(err, racefree.ErrLeaseLost) {
		t.Fatalf("Check with the old token: %v, want ErrLeaseLost", err)
	}
	must(t, check(b))
	must(t, b.Release(ctx))
}
