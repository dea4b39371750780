package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// tableLockTxOptions is a transaction LockTableWrite works in on every
// engine (MySQL needs REPEATABLE READ, its default).
var tableLockTxOptions = racefree.TxOptions{}

// requireTableLocks skips engines without table locks (TiDB, CockroachDB),
// where LockTable is refused (TestLockTable_Refusals).
func requireTableLocks(t *testing.T, db *racefree.DB) {
	t.Helper()
	if !hasTableLocks(db) {
		t.Skipf("%s has no table locks", db.Dialect().Server())
	}
}

// hasTableLocks reports whether LockTable can lock on db: table locks, or
// a single writer's write lock.
func hasTableLocks(db *racefree.DB) bool {
	f := db.Dialect().Features()
	return f.Has(dialect.TableLocks) || f.Has(dialect.SingleWriter)
}

// TestLockTable_LimitAcrossProcesses: "count the rows, insert one if below
// the limit" is a race over the whole table; under LockTableWrite, 2
// processes × 16 goroutines never exceed the limit.
func TestLockTable_LimitAcrossProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 120*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		requireTableLocks(t, db)
		table := testdb.CreateTable(t, db, "tlimit", "id {{id}}, who {{text}}")
		proctest.Run(t, 2, "TestLockTableLimitChild", map[string]string{"dsn": dsn, "table": table, "lock": "1"}, 100*time.Second)
		if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != 10 {
			t.Fatalf("%d rows under a limit of 10", got)
		}
	})
}

// TestLockTable_LimitWithoutLockExceeds shows the race the lock prevents.
func TestLockTable_LimitWithoutLockExceeds(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite's IMMEDIATE write transactions already serialize the workload")
		}
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "tlimit", "id {{id}}, who {{text}}")
		for round := 0; round < 5; round++ {
			limitedInserts(t, db, table, false, 32)
			if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got > 10 {
				t.Logf("%s: without the lock %d rows under a limit of 10", e.Name, got)
				return
			}
			testdb.Exec(t, db, "DELETE FROM "+table)
		}
		t.Fatal("the limit held without the lock in 5 rounds: the locked test proves nothing")
	})
}

func TestLockTableLimitChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 90*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(8)
	limitedInserts(t, db, args.Values["table"], args.Values["lock"] == "1", 16)
}

// limitedInserts runs workers that each insert one row if the table has
// fewer than 10.
func limitedInserts(t *testing.T, db *racefree.DB, table string, lock bool, workers int) {
	ctx := context.Background()
	ph := db.Dialect().Placeholder
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := racefree.RunInTx(ctx, db, tableLockTxOptions, func(ctx context.Context, tx *racefree.Tx) error {
				if lock {
					if err := racefree.LockTable(ctx, tx, table, racefree.LockTableWrite, racefree.LockOptions{}); err != nil {
						return err
					}
				}
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
					return err
				}
				if n >= 10 {
					return nil
				}
				_, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (who) VALUES ("+ph(1)+")", strconv.Itoa(w))
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
}

func TestLockTable_WriteBlocksWritersNotReaders(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		requireTableLocks(t, db)
		table := testdb.CreateTable(t, db, "tblock", "id {{id}}, who {{text}}")
		testdb.Exec(t, db, "INSERT INTO "+table+" (who) VALUES ('a')")
		ctx := context.Background()
		sqlTx, err := db.SQL().BeginTx(ctx, &sql.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sqlTx.Rollback()
		if err := racefree.LockTable(ctx, db.WrapTx(sqlTx, &sql.TxOptions{}), table, racefree.LockTableWrite, racefree.LockOptions{}); err != nil {
			t.Fatal(err)
		}
		// A plain read goes on.
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Fatalf("read %d rows", n)
		}
		inserted := make(chan error, 1)
		go func() {
			_, err := db.SQL().ExecContext(ctx, "INSERT INTO "+table+" (who) VALUES ('b')")
			inserted <- err
		}()
		select {
		case err := <-inserted:
			t.Fatalf("a writer got past LockTableWrite: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if e.Name != "sqlite" {
			// Try from another transaction fails fast.
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				return racefree.LockTable(ctx, tx, table, racefree.LockTableWrite, racefree.LockOptions{Wait: racefree.Wait{Try: true}})
			})
			if !errors.Is(err, racefree.ErrLockNotAcquired) {
				t.Fatalf("Try on a locked table: want ErrLockNotAcquired, got %v", err)
			}
		}
		if err := sqlTx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-inserted; err != nil {
			t.Fatalf("writer after the lock ended: %v", err)
		}
	})
}

func TestLockTable_Refusals(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "tref", "id {{id}}")
		ctx := context.Background()
		lockIn := func(opts racefree.TxOptions, table string, mode racefree.TableLockMode) error {
			return racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
				return racefree.LockTable(ctx, tx, table, mode, racefree.LockOptions{})
			})
		}
		if err := lockIn(racefree.TxOptions{}, table, 0); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Errorf("mode 0: %v", err)
		}
		if !hasTableLocks(db) {
			// Refused whatever the table: the engine has no table locks.
			for _, tb := range []string{table, "no_such_table_rf"} {
				if err := lockIn(racefree.TxOptions{}, tb, racefree.LockTableWrite); !errors.Is(err, racefree.ErrLockUnsupported) {
					t.Errorf("%s without table locks: want ErrLockUnsupported, got %v", tb, err)
				}
			}
			return
		}
		if err := lockIn(racefree.TxOptions{}, "no_such_table_rf", racefree.LockTableWrite); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Errorf("unknown table: %v", err)
		}
		if err := lockIn(racefree.TxOptions{}, table+"; DROP TABLE x", racefree.LockTableWrite); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Errorf("injected table: %v", err)
		}
		err := lockIn(racefree.TxOptions{}, table, racefree.LockTableExclusive)
		if e.Name == "postgres" {
			if err != nil {
				t.Errorf("exclusive on PostgreSQL: %v", err)
			}
		} else if !errors.Is(err, racefree.ErrLockUnsupported) {
			t.Errorf("exclusive on %s: want ErrLockUnsupported, got %v", e.Name, err)
		}
		if e.Name == "mysql" {
			if err := lockIn(racefree.TxOptions{Isolation: sql.LevelReadCommitted}, table, racefree.LockTableWrite); !errors.Is(err, racefree.ErrLockUnsupported) {
				t.Errorf("READ COMMITTED on MySQL: want ErrLockUnsupported, got %v", err)
			}
			sqlTx, err := db.SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sqlTx.Rollback()
			if err := racefree.LockTable(ctx, db.WrapTx(sqlTx, nil), table, racefree.LockTableWrite, racefree.LockOptions{}); !errors.Is(err, racefree.ErrLockUnsupported) {
				t.Errorf("unknown isolation on MySQL: want ErrLockUnsupported, got %v", err)
			}
		}
		if err := racefree.LockTable(ctx, nil, table, racefree.LockTableWrite, racefree.LockOptions{}); err == nil {
			t.Error("nil tx accepted")
		}
	})
}

// noTableLocksPG is PostgreSQL pretending to be CockroachDB, which has no
// LOCK TABLE.
type noTableLocksPG struct{ *pgdialect.Dialect }

func (d noTableLocksPG) Features() dialect.Features {
	return d.Dialect.Features().Without(dialect.TableLocks)
}

func TestLockTable_RefusedWithoutTableLocks(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	sqlDB, err := pgdialect.Open(e.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() }) // after CreateTable's cleanup
	ctx := context.Background()
	db, err := racefree.New(ctx, sqlDB, noTableLocksPG{pgdialect.New()})
	if err != nil {
		t.Fatal(err)
	}
	table := testdb.CreateTable(t, db, "tnolock", "id {{id}}")
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.LockTable(ctx, tx, table, racefree.LockTableWrite, racefree.LockOptions{})
	})
	if !errors.Is(err, racefree.ErrLockUnsupported) {
		t.Fatalf("want ErrLockUnsupported, got %v", err)
	}
}
