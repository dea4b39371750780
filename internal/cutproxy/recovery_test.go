package cutproxy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/testdb"
)

// A connection cut under a statement of the transaction, before COMMIT
// was sent: the server rolls the transaction back, and RunInTx runs it
// again on a new connection. The caller sees success, and the work is in
// the database once.
func TestRunInTx_CutBeforeCommitIsRunAgain(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY, k BIGINT NOT NULL")
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		runs := 0
		err := racefree.RunInTx(ctx, w.DB, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			runs++
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, k) VALUES (%d, 1)", table, runs)); err != nil {
				return err
			}
			if runs == 1 {
				for p.Cut(rng) { // every connection: the transaction's among them
				}
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET k = 2 WHERE id = %d", table, runs))
			return err
		})
		if err != nil {
			t.Fatalf("RunInTx = %v, want the cut recovered", err)
		}
		if runs != 2 {
			t.Errorf("the function ran %d times, want 2", runs)
		}
		if n := testdb.QueryInt(t, w.DB, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Errorf("%d rows, want 1: the cut transaction was rolled back, the second committed", n)
		}
		if p.Faults()[cutproxy.KindCut] == 0 {
			t.Error("no cut happened")
		}
	})
}

// TxOptions.VerifyCommit settles both COMMIT cuts on PostgreSQL: the
// server says whether the transaction committed, so that the caller gets
// success and the work is in the database exactly once — run again after
// the cut before COMMIT reached the server, not after the one whose
// answer was dropped.
func TestRunInTx_VerifyCommitSettlesCuts(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	testdb.Watchdog(t, time.Minute)
	w, p := openVia(t, e)
	table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY, k BIGINT NOT NULL")
	ctx := context.Background()
	for k, tc := range []struct {
		kind     string
		wantRuns int
	}{{cutproxy.KindBeforeCommit, 2}, {cutproxy.KindAfterCommit, 1}} {
		runs := 0
		p.ArmCommitCut(tc.kind)
		err := racefree.RunInTx(ctx, w.DB, racefree.TxOptions{VerifyCommit: true}, func(ctx context.Context, tx *racefree.Tx) error {
			runs++
			_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, k) VALUES (%d, %d)", table, k*100+runs, k))
			return err
		})
		if err != nil {
			t.Errorf("%s: RunInTx = %v, want the outcome settled", tc.kind, err)
		}
		if runs != tc.wantRuns {
			t.Errorf("%s: the function ran %d times, want %d", tc.kind, runs, tc.wantRuns)
		}
		if n := testdb.QueryInt(t, w.DB, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE k = %d", table, k)); n != 1 {
			t.Errorf("%s: applied %d times, want once", tc.kind, n)
		}
		if p.Faults()[tc.kind] != 1 {
			t.Errorf("%s: the cut did not happen (faults %v)", tc.kind, p.Faults())
		}
	}
}

// RunOnce makes transfers exactly-once under cuts: every transfer has a
// unique key, connections are reset at random and around COMMITs, and
// afterwards the ledger (one row per applied transfer, its key index not
// unique so that a transfer applied twice would show) has no key twice, no
// call returned an error — no unknown outcome was left to the caller —
// and the money adds up.
func TestRunOnce_TransfersUnderCuts(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 3*time.Minute)
		w, p := openVia(t, e)
		ctx := context.Background()
		const accounts = 10
		acct := testdb.CreateTable(t, w.DB, "once_acct", "id BIGINT PRIMARY KEY, balance BIGINT NOT NULL")
		ledger := testdb.CreateTable(t, w.DB, "once_ledger", "idem_key VARCHAR(64) NOT NULL, from_id BIGINT NOT NULL, to_id BIGINT NOT NULL, amount BIGINT NOT NULL")
		testdb.Exec(t, w.DB, "CREATE INDEX "+ledger+"_key ON "+ledger+" (idem_key)")
		for i := range accounts {
			testdb.Exec(t, w.DB, fmt.Sprintf("INSERT INTO %s (id, balance) VALUES (%d, 1000)", acct, i))
		}
		keys := testdb.UniqueName("once")
		if err := racefree.CreateOnceTable(ctx, w.DB, keys); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.SQL().Exec("DROP TABLE IF EXISTS " + keys) })
		opts := racefree.OnceOptions{Table: keys}

		chaos, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); p.Chaos(chaos, 30, rand.New(rand.NewPCG(3, 4))) }()
		var mu sync.Mutex
		var errs []error
		applied := 0
		// Each goroutine makes 150 transfers, and goes on until the proxy
		// has made faults of every kind: on a fast machine 600 transfers
		// can end before the chaos, paced in time, has reached them all.
		everyKind := func() bool {
			f := p.Faults()
			return f[cutproxy.KindBeforeCommit] > 0 && f[cutproxy.KindAfterCommit] > 0 && f[cutproxy.KindCut] > 0
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 9))
				for i := 0; i < 150 || !everyKind(); i++ {
					from, to := rng.Int64N(accounts), rng.Int64N(accounts)
					if from == to {
						continue
					}
					amount := 1 + rng.Int64N(50)
					key := fmt.Sprintf("%d-%d", g, i)
					ok, _, err := racefree.RunOnce(ctx, w.DB, key, opts, func(ctx context.Context, tx *racefree.Tx) (bool, error) {
						res, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET balance = balance - %d WHERE id = %d AND balance >= %d", acct, amount, from, amount))
						if err != nil {
							return false, err
						}
						if n, err := res.RowsAffected(); err != nil || n == 0 {
							return false, err // declined: funds short
						}
						if _, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET balance = balance + %d WHERE id = %d", acct, amount, to)); err != nil {
							return false, err
						}
						_, err = tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (idem_key, from_id, to_id, amount) VALUES ('%s', %d, %d, %d)", ledger, key, from, to, amount))
						return true, err
					})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if ok {
						applied++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		stop()
		<-done
		for _, err := range errs[:min(len(errs), 5)] {
			t.Errorf("RunOnce: %v", err)
		}
		if len(errs) > 0 {
			t.Errorf("%d transfers returned an error", len(errs))
		}
		twice := testdb.QueryInt(t, w.DB, "SELECT COUNT(*) FROM (SELECT idem_key FROM "+ledger+" GROUP BY idem_key HAVING COUNT(*) > 1) d")
		rows := testdb.QueryInt(t, w.DB, "SELECT COUNT(*) FROM "+ledger)
		sum := testdb.QueryInt(t, w.DB, "SELECT SUM(balance) FROM "+acct)
		if twice != 0 || rows != int64(applied) || sum != accounts*1000 {
			t.Errorf("%d keys applied twice, %d ledger rows for %d transfers applied, money %d (want %d)", twice, rows, applied, sum, accounts*1000)
		}
		f := p.Faults()
		if f[cutproxy.KindBeforeCommit] == 0 || f[cutproxy.KindAfterCommit] == 0 || f[cutproxy.KindCut] == 0 {
			t.Errorf("faults %v: want cuts of every kind", f)
		}
		t.Logf("%d transfers applied, faults %v", applied, f)
	})
}

// A session lock whose connection is cut while it is held is reported
// lost to the holder: Do cancels fn's context with ErrLockLost, and the
// server has released the lock, so another session takes it.
func TestSessionLock_CutIsReportedLost(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		other := e.Open(t)
		ctx := context.Background()
		name := testdb.UniqueName("cutlock")
		l, err := racefree.AcquireSessionLock(ctx, w.DB, name, racefree.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		err = l.Do(ctx, func(ctx context.Context) error {
			for p.Cut(rng) {
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(20 * time.Second):
				return errors.New("fn's context never ended")
			}
		})
		if !errors.Is(err, racefree.ErrLockLost) {
			t.Fatalf("Do after the lock's connection was cut: %v, want ErrLockLost", err)
		}
		l2, err := racefree.AcquireSessionLock(ctx, other, name, racefree.LockOptions{Wait: racefree.Wait{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatalf("the cut session's lock was not released: %v", err)
		}
		l2.Release(ctx)
		l.Release(ctx)
	})
}

// LockSession on a pool whose connections were all cut while idle takes
// the lock on a new connection: a session that died under the lock
// statement holds nothing.
func TestLockSession_RecoversCutConnections(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		ctx := context.Background()
		w.SQL().SetMaxIdleConns(4)
		for range 3 {
			l, err := racefree.AcquireSessionLock(ctx, w.DB, testdb.UniqueName("warm"), racefree.LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			l.Release(ctx)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		for p.Cut(rng) {
		}
		name := testdb.UniqueName("recover")
		l, err := racefree.AcquireSessionLock(ctx, w.DB, name, racefree.LockOptions{})
		if err != nil {
			t.Fatalf("LockSession after the idle connections were cut: %v", err)
		}
		if err := l.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if p.Faults()[cutproxy.KindCut] == 0 {
			t.Fatal("nothing was cut")
		}
	})
}

// A lease acquisition whose COMMIT is cut — before it reached the server
// or after, answer dropped — is settled from the lease row: the caller
// gets the lease, with the token the row holds, exactly once.
func TestAcquireLease_CommitCutSettled(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		other := e.Open(t)
		ctx := context.Background()
		if err := racefree.CreateLeaseTable(ctx, w.DB); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{cutproxy.KindBeforeCommit, cutproxy.KindAfterCommit} {
			name := testdb.UniqueName("cutlease")
			p.ArmCommitCut(kind)
			l, err := racefree.AcquireLease(ctx, w.DB, name, racefree.LeaseOptions{TTL: time.Minute, Wait: racefree.Wait{Timeout: 10 * time.Second}})
			if err != nil {
				t.Fatalf("%s: AcquireLease = %v, want the lease", kind, err)
			}
			if p.Faults()[kind] != 1 {
				t.Fatalf("%s: the cut did not happen (faults %v)", kind, p.Faults())
			}
			if _, err := racefree.AcquireLease(ctx, other, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
				t.Errorf("%s: another holder got the lease too: %v", kind, err)
			}
			tx, err := other.SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = l.Check(ctx, other.WrapTx(tx, nil))
			tx.Rollback()
			if err != nil {
				t.Errorf("%s: the settled token %d is not the current one: %v", kind, l.Token(), err)
			}
			if err := l.Release(ctx); err != nil {
				t.Errorf("%s: Release: %v", kind, err)
			}
		}
	})
}
