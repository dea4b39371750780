package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// noAdvisoryPG is PostgreSQL pretending to lack advisory locks, as
// CockroachDB does, so that LockNamed's lock-table path for
// PostgreSQL-protocol engines runs against a real server.
type noAdvisoryPG struct{ *pgdialect.Dialect }

func (d noAdvisoryPG) Features() dialect.Features {
	return d.Dialect.Features().Without(dialect.AdvisoryLocks)
}

func openNoAdvisoryPG(t testing.TB, dsn string) *racefree.DB {
	t.Helper()
	sqlDB, err := pgdialect.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	db, err := racefree.New(context.Background(), sqlDB, noAdvisoryPG{pgdialect.New()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestLockNamed_LockTableOnPostgres runs the lock-table path (CockroachDB's)
// on PostgreSQL: the table is created on first use, 4 processes × 64
// goroutines lose no increment, Try and Timeout behave.
func TestLockNamed_LockTableOnPostgres(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	defer testdb.Watchdog(t, 150*time.Second)()
	dsn := e.DSN(t)
	db := openNoAdvisoryPG(t, dsn)
	ctx := context.Background()
	// Creation on first use, inside a caller's transaction: the missing
	// table must not abort it.
	testdb.Exec(t, db, "DROP TABLE IF EXISTS racefree_locks")
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := racefree.LockNamed(ctx, tx, "first", racefree.LockOptions{}); err != nil {
			return err
		}
		var one int
		return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	})
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}

	table := mustNamedLockCounter(t, db)
	proctest.Run(t, nlProcs, "TestLockNamedCounterChild", map[string]string{
		"dsn": dsn, "table": table, "lock": testdb.UniqueName("tblctr"), "noadvisory": "1",
	}, 120*time.Second)
	if got, want := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = 1"), int64(nlProcs*nlGoroutines*nlIncrements); got != want {
		t.Fatalf("counter = %d, want %d", got, want)
	}

	name := testdb.UniqueName("tblheld")
	sqlTx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlTx.Rollback()
	if err := racefree.LockNamed(ctx, db.WrapTx(sqlTx, nil), name, racefree.LockOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, tc := range []struct {
		opts racefree.LockOptions
		want error
	}{
		{opts: racefree.LockOptions{Wait: racefree.Wait{Try: true}}, want: racefree.ErrLockNotAcquired},
		{opts: racefree.LockOptions{Wait: racefree.Wait{Timeout: 200 * time.Millisecond}}, want: racefree.ErrLockNotAcquired},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				err := racefree.LockNamed(ctx, tx, name, tc.opts)
				if !errors.Is(err, tc.want) {
					t.Errorf("%+v: want %v, got %v", tc.opts, tc.want, err)
				}
				var one int
				return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one) // still usable
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// TestLockNamed_LockTableCreatedInTransaction: on the engines whose named
// lock is a row of racefree_locks, a transaction that finds the table
// missing gets it created and takes the lock; where the transaction cannot
// see a table created after it began (TiDB), LockNamed fails with a
// serialization failure and RunInTx's next attempt takes the lock.
func TestLockNamed_LockTableCreatedInTransaction(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		db := lockTableDatabase(t, e, "rf_firstuse")
		d := db.Dialect()
		other := testdb.CreateTable(t, db, "firstuse", "id INTEGER PRIMARY KEY")
		ctx := context.Background()
		var retries []error
		opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) { retries = append(retries, err) })}
		err := racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
			// A statement first, so that the transaction has begun (and
			// taken its snapshot) before the table exists.
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+other).Scan(&n); err != nil {
				return err
			}
			return racefree.LockNamed(ctx, tx, "first", racefree.LockOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range retries {
			if !errors.Is(err, racefree.ErrSerialization) {
				t.Errorf("retried for another reason than a serialization failure: %v", err)
			}
		}
		t.Logf("%s: lock table created on first use; retries: %v", d.Server(), retries)
	})
}

// lockTableDatabase opens a database of its own on e, whose
// racefree_locks nobody else uses, so that a test sees LockNamed's first
// use. It skips t on the engines whose named lock needs no table.
func lockTableDatabase(t *testing.T, e testdb.Engine, prefix string) *racefree.DB {
	t.Helper()
	admin := e.Open(t)
	d := admin.Dialect()
	if _, xact := d.(dialect.XactLocker); d.Features().Has(dialect.SingleWriter) || xact && d.Features().Has(dialect.AdvisoryLocks) {
		t.Skipf("%s's named lock needs no table", d.Server())
	}
	name := testdb.UniqueName(prefix)
	testdb.Exec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { testdb.Exec(t, admin, "DROP DATABASE IF EXISTS "+name) })
	return testdb.Open(t, mysqlDSNWithDatabase(t, e.DSN(t), name))
}

// mysqlDSNWithDatabase returns dsn, a MySQL DSN in either form, naming
// database instead of its own.
func mysqlDSNWithDatabase(t *testing.T, dsn, database string) string {
	t.Helper()
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + database
		return u.String()
	}
	i := strings.Index(dsn, ")/")
	if i < 0 {
		t.Fatalf("no database in DSN %q", dsn)
	}
	rest := dsn[i+2:]
	params := ""
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		params = rest[j:]
	}
	return dsn[:i+2] + database + params
}

// On first use by a pool whose every connection is in a transaction that
// wants a named lock, the lock table is still created: the one call that
// creates it needs a connection of its own, so the others run their
// transactions again (returning their connections) instead of waiting for
// it. Before, they waited holding the pool, and the creator gave up after
// 10 s with "no free connection".
func TestLockNamed_LockTableFirstUseFullPool(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		const pool = 4
		db := lockTableDatabase(t, e, "rf_fullpool")
		d := db.Dialect()
		db.SQL().SetMaxOpenConns(pool)
		other := testdb.CreateTable(t, db, "fullpool", "id INTEGER PRIMARY KEY")
		ctx := context.Background()
		var (
			arrived  sync.WaitGroup
			busy     atomic.Int64
			attempts atomic.Int64
		)
		arrived.Add(pool)
		opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
			if strings.Contains(err.Error(), "being created") {
				busy.Add(1)
			}
		})}
		errs := make(chan error, pool)
		for i := range pool {
			go func() {
				first := true
				errs <- racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
					attempts.Add(1)
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+other).Scan(&n); err != nil {
						return err
					}
					if first {
						// Every connection of the pool is now in a
						// transaction, none of which has found the table.
						first = false
						arrived.Done()
						arrived.Wait()
					}
					return racefree.LockNamed(ctx, tx, fmt.Sprintf("fullpool-%d", i), racefree.LockOptions{})
				})
			}()
		}
		for range pool {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if busy.Load() == 0 {
			t.Fatalf("no transaction found the table being created (%d attempts): the test did not fill the pool", attempts.Load())
		}
		t.Logf("%s: %d transactions on a pool of %d, %d ran again while the table was created, %d attempts", d.Server(), pool, pool, busy.Load(), attempts.Load())
	})
}
