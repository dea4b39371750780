package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/examples/bank/ledger"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// The workload the issue asks for: 64 goroutines in each of 4 OS processes
// transferring between 10 accounts, in both directions.
const (
	procs          = 4
	goroutines     = 64
	transfersEach  = 8 // per goroutine
	accounts       = 10
	initialBalance = 1000
	poolSize       = 8 // connections per process: PostgreSQL allows 100 in all
)

// mustLedger creates a ledger with uniquely named tables, dropped when t ends.
func mustLedger(t testing.TB, db *racefree.DB) *ledger.Ledger {
	t.Helper()
	l := &ledger.Ledger{DB: db, Accounts: testdb.UniqueName("bank_acc"), Transfers: testdb.UniqueName("bank_trf")}
	if err := l.Create(context.Background(), accounts, initialBalance); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		testdb.Exec(t, db, "DROP TABLE IF EXISTS "+l.Accounts)
		testdb.Exec(t, db, "DROP TABLE IF EXISTS "+l.Transfers)
	})
	return l
}

// mustConserved checks the invariants: no money created or destroyed, no
// negative balance.
func mustConserved(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	sum, minBal, n, err := l.Totals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != accounts || sum != accounts*initialBalance {
		t.Fatalf("total = %d over %d accounts, want %d: money created or destroyed", sum, n, accounts*initialBalance)
	}
	if minBal < 0 {
		t.Fatalf("a balance went negative: %d", minBal)
	}
}

// pair picks two different accounts and an amount.
func pair(r *rand.Rand) (from, to, amount int64) {
	from = r.Int64N(accounts) + 1
	to = r.Int64N(accounts-1) + 1
	if to >= from {
		to++
	}
	return from, to, r.Int64N(100) + 1
}

func TestTransfer_AcrossProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 150*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		l := mustLedger(t, db)
		results := proctest.Run(t, procs, "TestTransferChild", map[string]string{
			"dsn": dsn, "accounts": l.Accounts, "transfers": l.Transfers, "order": "sorted",
		}, 120*time.Second)
		if t.Failed() {
			return
		}
		mustConserved(t, l)
		var applied, declined, deadlocks int64
		for _, v := range proctest.Values(results, "applied") {
			n, _ := strconv.ParseInt(v, 10, 64)
			applied += n
		}
		for _, v := range proctest.Values(results, "declined") {
			n, _ := strconv.ParseInt(v, 10, 64)
			declined += n
		}
		for _, v := range proctest.Values(results, "deadlocks") {
			n, _ := strconv.ParseInt(v, 10, 64)
			deadlocks += n
		}
		if want := int64(procs * goroutines * transfersEach); applied+declined != want {
			t.Fatalf("%d applied + %d declined, want %d transfers", applied, declined, want)
		}
		if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+l.Transfers); got != applied+declined {
			// Declined transfers roll back their idempotency record.
			if got != applied {
				t.Fatalf("%d transfer records for %d applied transfers", got, applied)
			}
		}
		// Ordered locking makes deadlocks impossible, not merely retried.
		if deadlocks != 0 {
			t.Fatalf("%d deadlocks with locks taken in ascending order", deadlocks)
		}
		t.Logf("%s: %d processes × %d goroutines: %d transfers applied, %d declined for funds, 0 deadlocks, total conserved",
			e.Name, procs, goroutines, applied, declined)
	})
}

// TestTransferChild is one process of the transfer tests.
func TestTransferChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 110*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(poolSize)
	var deadlocks, retries atomic.Int64
	// A budget longer than the default's: on SQLite a writer waits in the
	// engine's busy handler, which favours no one, and on a CI machine
	// loaded far beyond its two cores one of 4 processes' writers can wait
	// out 30 s. What this test proves is conservation and ordered locking,
	// not a latency.
	budget := racefree.Backoff{MaxAttempts: 20, MaxElapsed: 80 * time.Second}
	l := &ledger.Ledger{DB: db, Accounts: args.Values["accounts"], Transfers: args.Values["transfers"],
		TxOptions: racefree.TxOptions{Retry: onRetry(budget, func(_ int, err error, _ time.Duration) {
			retries.Add(1)
			if errors.Is(err, racefree.ErrDeadlock) {
				deadlocks.Add(1)
			}
		})}}
	transfer := l.Transfer
	duration, _ := time.ParseDuration(args.Values["duration"])
	if args.Values["order"] == "argument" {
		transfer = argumentOrderTransfer(l, &deadlocks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	var applied, declined, failed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(args.Index), uint64(g)))
			for i := 0; ; i++ {
				if duration > 0 && time.Now().After(deadline) || duration == 0 && i == transfersEach {
					return
				}
				from, to, amount := pair(r)
				key := fmt.Sprintf("%s-%d-%d-%d", args.Values["run"], args.Index, g, i)
				ok, err := transfer(ctx, key, from, to, amount)
				switch {
				case errors.Is(err, ledger.ErrInsufficientFunds):
					declined.Add(1)
				case errors.Is(err, racefree.ErrDeadlock) && args.Values["order"] == "argument":
					// Counted by argumentOrderTransfer: the point of that test.
				case err != nil:
					failed.Add(1)
					t.Errorf("transfer %d→%d: %v", from, to, err)
					return
				case !ok:
					t.Errorf("transfer %s reported as applied before", key)
					return
				default:
					applied.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	proctest.Report("applied", applied.Load())
	proctest.Report("declined", declined.Load())
	proctest.Report("deadlocks", deadlocks.Load())
	proctest.Report("retries", retries.Load())
}

// argumentOrderTransfer is the classic mistake: lock the debited account,
// then the credited one, so that A→B and B→A lock in opposite orders. No
// retries, so that every deadlock is seen.
func argumentOrderTransfer(l *ledger.Ledger, deadlocks *atomic.Int64) func(ctx context.Context, key string, from, to, amount int64) (bool, error) {
	return func(ctx context.Context, key string, from, to, amount int64) (bool, error) {
		ph := l.DB.Dialect().Placeholder
		err := racefree.RunInTx(ctx, l.DB, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
			for _, id := range []int64{from, to} {
				var got int64
				if err := tx.QueryRowContext(ctx, "SELECT id FROM "+l.Accounts+" WHERE id = "+ph(1)+" FOR UPDATE", id).Scan(&got); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, "UPDATE "+l.Accounts+" SET balance = balance - "+ph(1)+" WHERE id = "+ph(2)+" AND balance >= "+ph(3), amount, from, amount)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ledger.ErrInsufficientFunds
			}
			_, err = tx.ExecContext(ctx, "UPDATE "+l.Accounts+" SET balance = balance + "+ph(1)+" WHERE id = "+ph(2), amount, to)
			return err
		})
		if errors.Is(err, racefree.ErrDeadlock) {
			deadlocks.Add(1)
		}
		return err == nil, err
	}
}

// TestTransfer_ArgumentOrderDeadlocks runs the same transfers locking in
// argument order and shows the deadlocks the ordering prevents.
func TestTransfer_ArgumentOrderDeadlocks(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has one writer at a time: no lock order, no deadlock")
		}
		defer testdb.Watchdog(t, 90*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		l := mustLedger(t, db)
		results := proctest.Run(t, 2, "TestTransferChild", map[string]string{
			"dsn": dsn, "accounts": l.Accounts, "transfers": l.Transfers, "order": "argument", "duration": "3s",
		}, 60*time.Second)
		if t.Failed() {
			return
		}
		mustConserved(t, l)
		var deadlocks, applied int64
		for _, v := range proctest.Values(results, "deadlocks") {
			n, _ := strconv.ParseInt(v, 10, 64)
			deadlocks += n
		}
		for _, v := range proctest.Values(results, "applied") {
			n, _ := strconv.ParseInt(v, 10, 64)
			applied += n
		}
		if deadlocks == 0 {
			t.Fatalf("no deadlock in argument order (%d transfers applied): the ordering test proves nothing", applied)
		}
		t.Logf("%s: argument order: %d deadlocks for %d applied transfers in 3 s", e.Name, deadlocks, applied)
	})
}

func TestTransfer_Idempotent(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(poolSize)
		l := mustLedger(t, db)
		ctx := context.Background()
		// The caller lost the answer to its first call (as after
		// ErrCommitUnknown) and retries with the same key, many times at
		// once: the transfer is applied once.
		var appliedN atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := l.Transfer(ctx, "once", 1, 2, 10)
				if err != nil {
					t.Error(err)
				}
				if ok {
					appliedN.Add(1)
				}
			}()
		}
		wg.Wait()
		if got := appliedN.Load(); got != 1 {
			t.Fatalf("transfer applied %d times, want 1", got)
		}
		if got := testdb.QueryInt(t, db, "SELECT balance FROM "+l.Accounts+" WHERE id = 1"); got != initialBalance-10 {
			t.Fatalf("balance of 1 = %d, want %d", got, initialBalance-10)
		}
		mustConserved(t, l)
	})
}

func TestTransfer_Refused(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		l := mustLedger(t, db)
		ctx := context.Background()
		for _, tc := range []struct {
			name             string
			key              string
			from, to, amount int64
			want             error
		}{
			{name: "InsufficientFunds", key: "a", from: 1, to: 2, amount: initialBalance + 1, want: ledger.ErrInsufficientFunds},
			{name: "NoSuchAccount", key: "b", from: 1, to: 99, amount: 1, want: ledger.ErrNoSuchAccount},
			{name: "SameAccount", key: "c", from: 3, to: 3, amount: 1, want: ledger.ErrSameAccount},
			{name: "ZeroAmount", key: "d", from: 1, to: 2, amount: 0, want: ledger.ErrBadAmount},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ok, err := l.Transfer(ctx, tc.key, tc.from, tc.to, tc.amount)
				if !errors.Is(err, tc.want) || ok {
					t.Fatalf("got (%v, %v), want %v", ok, err, tc.want)
				}
				// Nothing written, the idempotency record included: the
				// same key can be used once the problem is fixed.
				if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+l.Transfers); n != 0 {
					t.Fatalf("%d transfer records after a refused transfer", n)
				}
				mustConserved(t, l)
				if got := testdb.QueryInt(t, db, "SELECT balance FROM "+l.Accounts+" WHERE id = 1"); got != initialBalance {
					t.Fatalf("balance of 1 changed to %d", got)
				}
			})
		}
	})
}
