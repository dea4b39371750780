package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// hasRowLock reports whether the engine offers the row lock l (a
// single-writer engine takes its write lock for every one).
func hasRowLock(db *racefree.DB, l racefree.RowLockOptions) bool {
	f := db.Dialect().Features()
	if f.Has(dialect.SingleWriter) {
		return true
	}
	need := dialect.ForUpdate
	if l.Share {
		need = dialect.ForShare
	}
	switch {
	case l.Wait.Try:
		need |= dialect.NoWait
	case l.SkipLocked:
		need |= dialect.SkipLocked
	}
	return f.Has(need)
}

// mustRowsTable creates a table with rows id 1..n, n = 0.
func mustRowsTable(t *testing.T, db *racefree.DB, n int) string {
	t.Helper()
	table := testdb.CreateTable(t, db, "rowlock", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
	for i := 1; i <= n; i++ {
		testdb.Exec(t, db, "INSERT INTO "+table+" (id, n) VALUES ("+strconv.Itoa(i)+", 0)")
	}
	return table
}

func TestLockRows_SortedDedupedMissing(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustRowsTable(t, db, 5)
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			got, err := racefree.LockRows(ctx, tx, table, "id", []int64{5, 3, 3, 99, 1}, racefree.RowLockOptions{})
			if err != nil {
				return err
			}
			if want := []int64{1, 3, 5}; !slices.Equal(got, want) {
				t.Errorf("locked %v, want %v", got, want)
			}
			got, err = racefree.LockRows(ctx, tx, table, "id", []int64{2, 4}, racefree.RowLockOptions{Share: true})
			if !hasRowLock(db, racefree.RowLockOptions{Share: true}) {
				if !errors.Is(err, racefree.ErrLockUnsupported) {
					t.Errorf("share lock on a server without it: want ErrLockUnsupported, got %v", err)
				}
				return nil
			}
			if err == nil && !slices.Equal(got, []int64{2, 4}) {
				t.Errorf("share-locked %v", got)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestLockRows_BadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustRowsTable(t, db, 1)
		ctx := context.Background()
		if _, err := racefree.LockRows(ctx, nil, table, "id", []int{1}, racefree.RowLockOptions{}); err == nil || !strings.Contains(err.Error(), "nil transaction") {
			t.Errorf("nil tx: %v", err)
		}
		for _, tc := range []struct {
			name          string
			table, column string
			keys          []int
		}{
			{name: "NoKeys", table: table, column: "id"},
			{name: "InjectedTable", table: table + "; DROP TABLE x", column: "id", keys: []int{1}},
			{name: "InjectedColumn", table: table, column: "id) OR (1=1", keys: []int{1}},
			{name: "QualifiedColumn", table: table, column: "t.id", keys: []int{1}},
			{name: "UnknownTable", table: "no_such_table_racefree", column: "id", keys: []int{1}},
			{name: "UnknownColumn", table: table, column: "nope", keys: []int{1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Each case in its own transaction: on PostgreSQL an
				// unknown table aborts the transaction, as it should.
				err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
					_, err := racefree.LockRows(ctx, tx, tc.table, tc.column, tc.keys, racefree.RowLockOptions{})
					return err
				})
				if !errors.Is(err, racefree.ErrInvalidInput) {
					t.Fatalf("want ErrInvalidInput, got %v", err)
				}
			})
		}
		err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			for _, bad := range []racefree.RowLockOptions{
				{Wait: racefree.Wait{Timeout: -time.Second}},
				{Wait: racefree.Wait{Try: true, Timeout: time.Second}},
				{SkipLocked: true, Wait: racefree.Wait{Try: true}},
				{SkipLocked: true, Wait: racefree.Wait{Timeout: time.Second}},
			} {
				if _, err := racefree.LockRows(ctx, tx, table, "id", []int{1}, bad); !errors.Is(err, racefree.ErrInvalidInput) {
					return fmt.Errorf("%+v: want ErrInvalidInput, got %v", bad, err)
				}
			}
			if _, err := racefree.LockClause(ctx, tx, racefree.RowLockOptions{Wait: racefree.Wait{Timeout: time.Second}}); !errors.Is(err, racefree.ErrInvalidInput) {
				return fmt.Errorf("LockClause with a Timeout: want ErrInvalidInput, got %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// holdRows locks ids in a transaction of its own until release.
func holdRows(t *testing.T, db *racefree.DB, table string, ids ...int64) (release func()) {
	t.Helper()
	ctx := context.Background()
	sqlTx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := racefree.LockRows(ctx, db.WrapTx(sqlTx, &sql.TxOptions{}), table, "id", ids, racefree.RowLockOptions{}); err != nil {
		sqlTx.Rollback()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = sqlTx.Rollback() }) }
	t.Cleanup(release)
	return release
}

func TestLockRows_NoWaitSkipLockedAndWait(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no row locks: the write lock is taken when the transaction begins (see TestLockClause_SQLite)")
		}
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		table := mustRowsTable(t, db, 3)
		ctx := context.Background()
		release := holdRows(t, db, table, 2)

		t.Run("NoWait", func(t *testing.T) {
			if !hasRowLock(db, racefree.RowLockOptions{Wait: racefree.Wait{Try: true}}) {
				t.Skipf("%s has no NOWAIT", db.Dialect().Server())
			}
			start := time.Now()
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				_, err := racefree.LockRows(ctx, tx, table, "id", []int64{3, 2, 1}, racefree.RowLockOptions{Wait: racefree.Wait{Try: true}})
				if !errors.Is(err, racefree.ErrLockNotAcquired) {
					t.Errorf("want ErrLockNotAcquired, got %v", err)
				}
				var one int
				return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one) // still usable
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("NoWait took %v", d)
			}
		})
		t.Run("Timeout", func(t *testing.T) {
			// The same error as NoWait, after the wait: one vocabulary. The
			// rows locked before the held one stay locked, tx usable, and
			// the session's own lock timeout is back afterwards.
			timeout := 300 * time.Millisecond
			start := time.Now()
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				_, err := racefree.LockRows(ctx, tx, table, "id", []int64{3, 2, 1}, racefree.RowLockOptions{Wait: racefree.Wait{Timeout: timeout}})
				if !errors.Is(err, racefree.ErrLockNotAcquired) || !strings.Contains(err.Error(), "within "+timeout.String()) {
					t.Errorf("want ErrLockNotAcquired naming the timeout, got %v", err)
				}
				var one int
				return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one) // still usable
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < timeout || d > 5*time.Second {
				t.Errorf("a wait of %v took %v", timeout, d)
			}
		})
		t.Run("SkipLocked", func(t *testing.T) {
			if !hasRowLock(db, racefree.RowLockOptions{SkipLocked: true}) {
				t.Skipf("%s has no SKIP LOCKED", db.Dialect().Server())
			}
			err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
				got, err := racefree.LockRows(ctx, tx, table, "id", []int64{3, 2, 1}, racefree.RowLockOptions{SkipLocked: true})
				if err == nil && !slices.Equal(got, []int64{1, 3}) {
					t.Errorf("SKIP LOCKED returned %v, want [1 3]", got)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		t.Run("WaitsForRelease", func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				done <- racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					_, err := racefree.LockRows(ctx, tx, table, "id", []int64{2}, racefree.RowLockOptions{})
					return err
				})
			}()
			select {
			case err := <-done:
				t.Fatalf("locked a held row: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestLockRows_RandomOrderNoDeadlock: goroutines lock random sets of rows
// listed in random order and increment each with a plain read-then-write
// (at READ COMMITTED where a REPEATABLE READ snapshot predates the lock;
// see lockedReadTx). A single deadlock fails the test; a lost increment
// would show in the sums. Other retryable errors (SQLite's busy, TiDB's
// pessimistic lock retry limit) are retried.
func TestLockRows_RandomOrderNoDeadlock(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 90*time.Second)()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(16)
		const rows, workers, rounds = 8, 32, 10
		table := mustRowsTable(t, db, rows)
		ctx := context.Background()
		ph := db.Dialect().Placeholder
		var (
			mu        sync.Mutex // guards expected
			expected  = make([]int, rows+1)
			wg        sync.WaitGroup
			deadlocks atomic.Int64
			retries   atomic.Int64
		)
		opts := lockedReadTx(db)
		opts.Retry = onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
			retries.Add(1)
			if errors.Is(err, racefree.ErrDeadlock) {
				deadlocks.Add(1)
			}
		})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for range rounds {
					ids := r.Perm(rows)[:3]
					keys := []int64{int64(ids[0] + 1), int64(ids[1] + 1), int64(ids[2] + 1)}
					err := racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
						if _, err := racefree.LockRows(ctx, tx, table, "id", keys, racefree.RowLockOptions{}); err != nil {
							return err
						}
						for _, k := range keys {
							var n int
							if err := tx.QueryRowContext(ctx, "SELECT n FROM "+table+" WHERE id = "+ph(1), k).Scan(&n); err != nil {
								return err
							}
							if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET n = "+ph(1)+" WHERE id = "+ph(2), n+1, k); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Errorf("keys %v: %v", keys, err)
						return
					}
					mu.Lock()
					for _, k := range keys {
						expected[k]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if n := deadlocks.Load(); n > 0 {
			t.Errorf("%d deadlocks between LockRows callers", n)
		}
		for id := 1; id <= rows; id++ {
			if got := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = "+strconv.Itoa(id)); got != int64(expected[id]) {
				t.Errorf("row %d: n = %d, want %d", id, got, expected[id])
			}
		}
		t.Logf("%s: %d transactions, no deadlock, %d other retries", db.Dialect().Server(), workers*rounds, retries.Load())
	})
}

func TestLockClause(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustRowsTable(t, db, 1)
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			for _, l := range []racefree.RowLockOptions{{}, {Share: true}, {Wait: racefree.Wait{Try: true}}, {SkipLocked: true}, {Share: true, SkipLocked: true}} {
				c, err := racefree.LockClause(ctx, tx, l)
				if !hasRowLock(db, l) {
					if !errors.Is(err, racefree.ErrLockUnsupported) {
						t.Errorf("%+v on a server without it: want ErrLockUnsupported, got %q, %v", l, c, err)
					}
					continue
				}
				if err != nil {
					return err
				}
				if (e.Name == "sqlite") != (c == "") {
					t.Errorf("%s: clause %q for %+v", e.Name, c, l)
				}
				// The clause parses on the server.
				if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+table+" WHERE 1 = 0"+c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestLockClause_SQLite(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/c.db")
	ctx := context.Background()
	if _, err := racefree.LockClause(ctx, nil, racefree.RowLockOptions{}); err == nil {
		t.Error("nil tx accepted")
	}
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{ReadOnly: true}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := racefree.LockClause(ctx, tx, racefree.RowLockOptions{})
		return err
	})
	if !errors.Is(err, racefree.ErrLockUnsupported) {
		t.Fatalf("read-only SQLite transaction: want ErrLockUnsupported, got %v", err)
	}
}

// TestLockClause_SkipLockedQueueAcrossProcesses: 2 processes × 16
// goroutines claim jobs with FOR UPDATE SKIP LOCKED; every job is done
// exactly once. (On SQLite the write lock serializes the claims.)
func TestLockClause_SkipLockedQueueAcrossProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 120*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		if !hasRowLock(db, racefree.RowLockOptions{SkipLocked: true}) {
			t.Skipf("%s has no SKIP LOCKED", db.Dialect().Server())
		}
		const jobs = 300
		table := testdb.CreateTable(t, db, "jobs", "id INTEGER PRIMARY KEY, done INTEGER NOT NULL, runs INTEGER NOT NULL")
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			for i := 1; i <= jobs; i++ {
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (id, done, runs) VALUES ("+strconv.Itoa(i)+", 0, 0)"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		results := proctest.Run(t, 2, "TestSkipLockedQueueChild", map[string]string{"dsn": dsn, "table": table}, 100*time.Second)
		if t.Failed() {
			return
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table+" WHERE done = 1 AND runs = 1"); n != jobs {
			t.Fatalf("%d of %d jobs done exactly once (runs > 1: %d)", n, jobs, testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table+" WHERE runs > 1"))
		}
		t.Logf("%s: %d jobs, each done once; claims per process %v", e.Name, jobs, proctest.Values(results, "claimed"))
	})
}

func TestSkipLockedQueueChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 90*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(8)
	table := args.Values["table"]
	ph := db.Dialect().Placeholder
	ctx := context.Background()
	var claimed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				empty := false
				err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
					clause, err := racefree.LockClause(ctx, tx, racefree.RowLockOptions{SkipLocked: true})
					if err != nil {
						return err
					}
					var id int64
					err = tx.QueryRowContext(ctx, "SELECT id FROM "+table+" WHERE done = 0 ORDER BY id LIMIT 1"+clause).Scan(&id)
					if errors.Is(err, sql.ErrNoRows) {
						empty = true
						return nil
					}
					if err != nil {
						return err
					}
					// The "work": runs counts how often a job was done.
					_, err = tx.ExecContext(ctx, "UPDATE "+table+" SET done = 1, runs = runs + 1 WHERE id = "+ph(1), id)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if empty {
					return
				}
				claimed.Add(1)
			}
		}()
	}
	wg.Wait()
	proctest.Report("claimed", claimed.Load())
}

// The zero Wait waits until ctx ends, past MySQL's innodb_lock_wait_timeout
// (here 1 s on the waiting session): LockRows asks again after it fires.
func TestLockRows_WaitsPastServerLockTimeout(t *testing.T) {
	e, _ := testdb.Get("mysql")
	e.Require(t)
	defer testdb.Watchdog(t, 60*time.Second)()
	db := e.Open(t)
	table := mustRowsTable(t, db, 3)
	ctx := context.Background()
	release := holdRows(t, db, table, 2)
	time.AfterFunc(2500*time.Millisecond, release)
	start := time.Now()
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.NoRetry}, func(ctx context.Context, tx *racefree.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
			return err
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), "SET SESSION innodb_lock_wait_timeout = DEFAULT")
		got, err := racefree.LockRows(ctx, tx, table, "id", []int64{1, 2, 3}, racefree.RowLockOptions{})
		if err == nil && len(got) != 3 {
			t.Errorf("locked %v, want all three rows", got)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the zero Wait gave up: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("locked after %v, before the holder released (at 2.5 s)", d)
	}
}
