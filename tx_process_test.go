package racefree_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

const (
	counterProcs   = 4
	counterWorkers = 16
	counterIters   = 5
	counterRows    = 8
)

// TestRunInTx_ProcessesLoseNoIncrement runs 4 OS processes × 16 goroutines
// doing read-then-write increments. Inside RunInTx at SERIALIZABLE every
// increment lands, whatever conflicts the engine reports along the way; the
// same increments in autocommit lose some, which shows the test can fail.
func TestRunInTx_ProcessesLoseNoIncrement(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 4*time.Minute)
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		for _, mode := range []string{"runintx", "autocommit"} {
			t.Run(mode, func(t *testing.T) {
				if mode == "runintx" && !db.Dialect().Features().Has(dialect.SerializableIsolation) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				tbl := testdb.CreateTable(t, db, "inc", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
				for id := range counterRows {
					testdb.Exec(t, db, "INSERT INTO "+tbl+" (id, n) VALUES ("+strconv.Itoa(id)+", 0)")
				}
				results := proctest.Run(t, counterProcs, "TestRunInTx_ChildIncrements",
					map[string]string{"dsn": dsn, "table": tbl, "mode": mode}, 3*time.Minute)
				failed, retries := sumReported(t, results, "failed"), sumReported(t, results, "retries")
				want := int64(counterProcs*counterWorkers*counterIters) - failed
				got := testdb.QueryInt(t, db, "SELECT SUM(n) FROM "+tbl)
				t.Logf("%s %s: %d increments applied of %d done (%d failed, %d retries)", e.Name, mode, got, want, failed, retries)
				switch mode {
				case "runintx":
					if failed != 0 || got != want {
						t.Fatalf("RunInTx: sum %d, want %d; %d calls failed", got, want, failed)
					}
					// The increments collided and were retried (SQLite's
					// one writer serializes them in BEGIN instead).
					if retries == 0 && !db.Dialect().Features().Has(dialect.SingleWriter) {
						t.Fatal("no transaction was retried: the test did not race")
					}
				case "autocommit":
					if got == want {
						t.Fatalf("autocommit read-then-write lost no increment (sum %d): the control shows nothing", got)
					}
				}
			})
		}
	})
}

// TestRunInTx_ChildIncrements is the worker process of
// TestRunInTx_ProcessesLoseNoIncrement.
func TestRunInTx_ChildIncrements(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of TestRunInTx_ProcessesLoseNoIncrement")
	}
	db := testdb.Open(t, args.Values["dsn"])
	tbl, mode := args.Values["table"], args.Values["mode"]
	ctx := context.Background()
	increment := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, ctx context.Context, id int) error {
		var n int
		if err := q.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = "+strconv.Itoa(id)).Scan(&n); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, "UPDATE "+tbl+" SET n = "+strconv.Itoa(n+1)+" WHERE id = "+strconv.Itoa(id))
		return err
	}
	var failed, retries atomic.Int64
	count := onRetry(racefree.Backoff{}, func(int, error, time.Duration) { retries.Add(1) })
	var wg sync.WaitGroup
	for w := range counterWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range counterIters {
				id := (w + i + args.Index) % counterRows
				var err error
				if mode == "runintx" {
					err = racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelSerializable, Retry: count}, func(ctx context.Context, tx *racefree.Tx) error {
						return increment(tx, ctx, id)
					})
				} else {
					err = increment(db.SQL(), ctx, id)
				}
				if err != nil {
					failed.Add(1)
					fmt.Printf("increment failed: %v\n", err)
				}
			}
		}()
	}
	wg.Wait()
	proctest.Report("failed", failed.Load())
	proctest.Report("retries", retries.Load())
}
