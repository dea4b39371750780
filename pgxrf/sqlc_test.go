package pgxrf_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/examples/sqlcpgx/ledgerpg"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
)

// sqlc's pgx/v5 queries (examples/sqlcpgx/ledgerpg) inside pgxrf.RunInTx,
// the way tx_process_test.go runs database/sql code inside racefree.RunInTx:
// many goroutines in several processes, the rows checked afterwards, and a
// control that shows the same work without racefree loses updates.

const (
	ledgerProcs      = 4
	ledgerGoroutines = 16
	ledgerIters      = 8
	ledgerAccounts   = 8
	ledgerBalance    = 1000
	ledgerPool       = 4 // connections per process
)

// mustLedger creates a schema holding sqlc's accounts table with n
// accounts of balance each, dropped when tb ends. sqlc's queries name the
// table unqualified, so each test gets a schema of its own and its pools
// put it first on the search_path.
func mustLedger(tb testing.TB, check *racefree.DB, n int, balance int64) string {
	tb.Helper()
	schema := testdb.UniqueName("pgxrf_ledger")
	testdb.Exec(tb, check, "CREATE SCHEMA "+schema)
	tb.Cleanup(func() { testdb.Exec(tb, check, "DROP SCHEMA "+schema+" CASCADE") })
	testdb.Exec(tb, check, "CREATE TABLE "+schema+".accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL)")
	for id := 1; id <= n; id++ {
		testdb.Exec(tb, check, "INSERT INTO "+schema+".accounts (id, owner, balance) VALUES ($1, $2, $3)", id, "owner"+strconv.Itoa(id), balance)
	}
	return schema
}

// mustLedgerPool opens a pool whose sessions find schema first.
func mustLedgerPool(tb testing.TB, dsn, schema string, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// increment is a read-then-write increment written with sqlc's queries:
// two workers that read the same balance lose one increment, unless a
// SERIALIZABLE transaction makes one of them fail and run again.
func increment(ctx context.Context, q *ledgerpg.Queries, id int64) error {
	a, err := q.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	n, err := q.SetBalance(ctx, ledgerpg.SetBalanceParams{Balance: a.Balance + 1, ID: id})
	if err == nil && n != 1 {
		err = fmt.Errorf("SetBalance changed %d rows", n)
	}
	return err
}

// TestSQLC_IncrementsAcrossProcesses: ledgerProcs processes ×
// ledgerGoroutines goroutines run sqlc's read-then-write increment. Inside
// pgxrf.RunInTx at SERIALIZABLE every increment lands, through retried
// serialization failures; on the pool (autocommit) some are lost, which
// shows the test can fail.
func TestSQLC_IncrementsAcrossProcesses(t *testing.T) {
	defer testdb.Watchdog(t, 4*time.Minute)()
	e := pg(t)
	check := e.Open(t)
	for _, mode := range []string{"runintx", "autocommit"} {
		t.Run(mode, func(t *testing.T) {
			schema := mustLedger(t, check, ledgerAccounts, 0)
			results := proctest.Run(t, ledgerProcs, "TestSQLCIncrementChild",
				map[string]string{"dsn": e.DSN(t), "schema": schema, "mode": mode}, 3*time.Minute)
			failed, retries := sumReported(results, "failed"), sumReported(results, "retries")
			want := int64(ledgerProcs*ledgerGoroutines*ledgerIters) - failed
			got := testdb.QueryInt(t, check, "SELECT SUM(balance) FROM "+schema+".accounts")
			t.Logf("%s: %d increments applied of %d done (%d failed, %d serialization failures retried)", mode, got, want, failed, retries)
			switch mode {
			case "runintx":
				if failed != 0 || got != want {
					t.Fatalf("sum %d, want %d; %d calls failed", got, want, failed)
				}
				if retries == 0 {
					t.Fatal("no serialization failure was retried: the increments did not race")
				}
			case "autocommit":
				if got >= want {
					t.Fatalf("autocommit read-then-write lost no increment (sum %d of %d): the control shows nothing", got, want)
				}
			}
		})
	}
}

// TestSQLCIncrementChild is one process of TestSQLC_IncrementsAcrossProcesses.
func TestSQLCIncrementChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 170*time.Second)()
	pool := mustLedgerPool(t, args.Values["dsn"], args.Values["schema"], ledgerPool)
	db := mustDB(t, pool)
	queries := ledgerpg.New(pool)
	ctx, cancel := context.WithTimeout(context.Background(), 160*time.Second)
	defer cancel()
	var failed, retries atomic.Int64
	opts := racefree.TxOptions{
		Isolation: sql.LevelSerializable,
		// The rows are the point, not the budget.
		Retry: onRetry(racefree.Backoff{MaxAttempts: 200, MaxElapsed: time.Minute}, func(_ int, err error, _ time.Duration) {
			if errors.Is(err, racefree.ErrSerialization) {
				retries.Add(1)
			}
		}),
	}
	var wg sync.WaitGroup
	for g := range ledgerGoroutines {
		wg.Go(func() {
			for i := range ledgerIters {
				id := int64((g+i+args.Index)%ledgerAccounts + 1)
				var err error
				if args.Values["mode"] == "runintx" {
					err = pgxrf.RunInTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
						return increment(ctx, queries.WithTx(tx), id) // the one line: sqlc in racefree's transaction
					})
				} else {
					err = increment(ctx, queries, id)
				}
				if err != nil {
					failed.Add(1)
					fmt.Printf("increment failed: %v\n", err)
				}
			}
		})
	}
	wg.Wait()
	proctest.Report("failed", failed.Load())
	proctest.Report("retries", retries.Load())
}

// TestSQLC_TransfersWithLockRows: random transfers in both directions
// between ledgerAccounts accounts, in goroutines of several processes,
// written with sqlc's queries after racefree.LockRows locked both accounts
// in ascending order inside pgxrf.RunInTx. Money is neither created nor
// destroyed, no balance goes negative, no error reaches a caller and no
// deadlock happens; transfers really waited for each other's locks.
func TestSQLC_TransfersWithLockRows(t *testing.T) {
	defer testdb.Watchdog(t, 4*time.Minute)()
	e := pg(t)
	check := e.Open(t)
	schema := mustLedger(t, check, ledgerAccounts, ledgerBalance)
	results := proctest.Run(t, ledgerProcs, "TestSQLCTransferChild", map[string]string{"dsn": e.DSN(t), "schema": schema}, 3*time.Minute)
	done, deadlocks := sumReported(results, "done"), sumReported(results, "deadlocks")
	total := testdb.QueryInt(t, check, "SELECT SUM(balance) FROM "+schema+".accounts")
	negative := testdb.QueryInt(t, check, "SELECT COUNT(*) FROM "+schema+".accounts WHERE balance < 0")
	held := sumReported(results, "held")
	t.Logf("%d transfers, total %d, %d negative balances, %d deadlocks; %d probes found a transfer's rows held by another", done, total, negative, deadlocks, held)
	if want := int64(ledgerAccounts * ledgerBalance); total != want || negative != 0 {
		t.Fatalf("total %d (want %d), %d negative balances", total, want, negative)
	}
	if done != ledgerProcs*ledgerGoroutines*ledgerIters {
		t.Fatalf("%d transfers done, want %d", done, ledgerProcs*ledgerGoroutines*ledgerIters)
	}
	if deadlocks != 0 {
		t.Fatalf("%d deadlocks: LockRows did not order the locks", deadlocks)
	}
	if held == 0 {
		t.Fatal("no probe found a transfer's rows held by another: the test did not race")
	}
}

var errInsufficient = errors.New("insufficient funds")

// TestSQLCTransferChild is one process of TestSQLC_TransfersWithLockRows.
func TestSQLCTransferChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 170*time.Second)()
	pool := mustLedgerPool(t, args.Values["dsn"], args.Values["schema"], ledgerPool)
	db := mustDB(t, pool)
	queries := ledgerpg.New(pool)
	ctx, cancel := context.WithTimeout(context.Background(), 160*time.Second)
	defer cancel()
	var done, deadlocks, held atomic.Int64
	opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
		if db.Classify(err).Class == dialect.ClassDeadlock {
			deadlocks.Add(1)
		}
	})}
	var wg sync.WaitGroup
	for g := range ledgerGoroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(args.Index), uint64(g)))
			for range ledgerIters {
				from := int64(rng.IntN(ledgerAccounts) + 1)
				to := int64(rng.IntN(ledgerAccounts-1) + 1)
				if to >= from {
					to++
				}
				amount := int64(rng.IntN(50) + 1)
				// Is another transfer holding these rows right now? (A
				// statement of its own that skips held rows: it never
				// waits, and holds nothing afterwards.)
				var free int
				if err := pool.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT id FROM accounts WHERE id IN ($1, $2) FOR UPDATE SKIP LOCKED) f", from, to).Scan(&free); err != nil {
					t.Errorf("probe: %v", err)
				} else if free < 2 {
					held.Add(1)
				}
				err := pgxrf.RunInTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
					q := queries.WithTx(tx)
					if _, err := racefree.LockRows(ctx, pgxrf.WrapTx(db, tx, nil), "accounts", "id", []int64{to, from}, racefree.RowLockOptions{}); err != nil {
						return err
					}
					src, err := q.GetAccount(ctx, from)
					if err != nil {
						return err
					}
					if src.Balance < amount {
						return errInsufficient
					}
					if err := q.AddToBalance(ctx, ledgerpg.AddToBalanceParams{Amount: -amount, ID: from}); err != nil {
						return err
					}
					return q.AddToBalance(ctx, ledgerpg.AddToBalanceParams{Amount: amount, ID: to})
				})
				if err != nil && !errors.Is(err, errInsufficient) {
					t.Errorf("transfer %d→%d: %v", from, to, err)
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	proctest.Report("done", done.Load())
	proctest.Report("held", held.Load())
	proctest.Report("deadlocks", deadlocks.Load())
}
