package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

func mustVersionedTable(t *testing.T, db *racefree.DB) string {
	t.Helper()
	table := testdb.CreateTable(t, db, "optim", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL, note {{text}}, version INTEGER NOT NULL")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id, n, note, version) VALUES (1, 0, 'a', 1)")
	return table
}

func TestUpdateIfVersion(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustVersionedTable(t, db)
		ctx := context.Background()
		row := racefree.Values{"id": 1}
		v, err := racefree.UpdateIfVersion(ctx, db, table, row, 1, racefree.Values{"note": "b", "n": 5}, racefree.VersionOptions{})
		if err != nil || v != 2 {
			t.Fatalf("first update: (%d, %v)", v, err)
		}
		_, err = racefree.UpdateIfVersion(ctx, db, table, row, 1, racefree.Values{"note": "stale"}, racefree.VersionOptions{})
		var ce *racefree.VersionConflictError
		if !errors.Is(err, racefree.ErrVersionChanged) || errors.Is(err, racefree.ErrRowGone) || !errors.As(err, &ce) || ce.Current != 2 {
			t.Fatalf("stale update: want ErrVersionChanged at version 2, got %v", err)
		}
		if got := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = 1"); got != 5 {
			t.Fatalf("stale update wrote: n = %d", got)
		}
		testdb.Exec(t, db, "DELETE FROM "+table+" WHERE id = 1")
		_, err = racefree.UpdateIfVersion(ctx, db, table, row, 2, racefree.Values{"note": "c"}, racefree.VersionOptions{})
		if !errors.Is(err, racefree.ErrRowGone) || errors.Is(err, racefree.ErrVersionChanged) {
			t.Fatalf("deleted row: want ErrRowGone, got %v", err)
		}
	})
}

func TestUpdateIfVersion_BadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustVersionedTable(t, db)
		ctx := context.Background()
		id := racefree.Values{"id": 1}
		for _, tc := range []struct {
			name   string
			table  string
			lookup racefree.Values
			set    racefree.Values
		}{
			{name: "NoLookup", table: table},
			{name: "NilKey", table: table, lookup: racefree.Values{"id": nil}},
			{name: "InjectedTable", table: table + " --", lookup: id},
			{name: "InjectedColumn", table: table, lookup: id, set: racefree.Values{"n = 0, note": 1}},
			{name: "SetsVersion", table: table, lookup: id, set: racefree.Values{"version": 9}},
			{name: "SetsLookup", table: table, lookup: id, set: racefree.Values{"id": 9}},
			{name: "LooksUpVersion", table: table, lookup: racefree.Values{"id": 1, "version": 1}},
			{name: "UnknownTable", table: "no_such_table_rf", lookup: id},
			{name: "UnknownKeyColumn", table: table, lookup: racefree.Values{"nope": 1}},
			{name: "UnknownSetColumn", table: table, lookup: id, set: racefree.Values{"nope": 1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := racefree.UpdateIfVersion(ctx, db, tc.table, tc.lookup, 1, tc.set, racefree.VersionOptions{})
				if !errors.Is(err, racefree.ErrInvalidInput) {
					t.Fatalf("want ErrInvalidInput, got %v", err)
				}
			})
		}
		if got := testdb.QueryInt(t, db, "SELECT version FROM "+table+" WHERE id = 1"); got != 1 {
			t.Fatalf("bad input wrote: version = %d", got)
		}
	})
}

// optimisticIncrements increments n with read, then UpdateIfVersion,
// retrying on ErrVersionChanged, and returns how many conflicts it met.
func optimisticIncrements(ctx context.Context, db *racefree.DB, table string, workers, rounds int) (conflicts int64, err error) {
	var (
		wg    sync.WaitGroup
		c     atomic.Int64
		mu    sync.Mutex // guards first
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				for {
					var n, v int64
					if err := db.SQL().QueryRowContext(ctx, "SELECT n, version FROM "+table+" WHERE id = 1").Scan(&n, &v); err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					_, err := racefree.UpdateIfVersion(ctx, db, table, racefree.Values{"id": 1}, v, racefree.Values{"n": n + 1}, racefree.VersionOptions{})
					if errors.Is(err, racefree.ErrVersionChanged) {
						c.Add(1)
						continue
					}
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	return c.Load(), first
}

// TestUpdateIfVersion_AcrossProcesses: 2 processes × 16 goroutines × 5
// increment one row optimistically: no increment lost, and conflicts did
// happen (so the check was exercised).
func TestUpdateIfVersion_AcrossProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 120*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		table := mustVersionedTable(t, db)
		results := proctest.Run(t, 2, "TestUpdateIfVersionChild", map[string]string{"dsn": dsn, "table": table}, 100*time.Second)
		if t.Failed() {
			return
		}
		if got := testdb.QueryInt(t, db, "SELECT n FROM "+table+" WHERE id = 1"); got != 2*16*5 {
			t.Fatalf("n = %d, want %d", got, 2*16*5)
		}
		c := proctest.Values(results, "conflicts")
		t.Logf("%s: 160 optimistic increments, conflicts per process %v", e.Name, c)
		if strings.Join(c, "") == "00" {
			t.Fatal("no version conflict: the test exercised nothing")
		}
	})
}

func TestUpdateIfVersionChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 90*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(8)
	conflicts, err := optimisticIncrements(context.Background(), db, args.Values["table"], 16, 5)
	if err != nil {
		t.Fatal(err)
	}
	proctest.Report("conflicts", conflicts)
}

// TestUpdateIfVersion_InTransaction: inside a caller's transaction the
// transaction's own earlier write is what a stale version conflicts with.
func TestUpdateIfVersion_InTransaction(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		table := mustVersionedTable(t, db)
		ctx := context.Background()
		opts := &sql.TxOptions{}
		if e.Name != "sqlite" {
			opts.Isolation = sql.LevelReadCommitted
		}
		sqlTx, err := db.SQL().BeginTx(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer sqlTx.Rollback()
		tx := db.WrapTx(sqlTx, opts)
		v, err := racefree.UpdateIfVersion(ctx, tx, table, racefree.Values{"id": 1}, 1, racefree.Values{"n": 1}, racefree.VersionOptions{})
		if err != nil || v != 2 {
			t.Fatalf("(%d, %v)", v, err)
		}
		_, err = racefree.UpdateIfVersion(ctx, tx, table, racefree.Values{"id": 1}, 1, nil, racefree.VersionOptions{})
		if !errors.Is(err, racefree.ErrVersionChanged) {
			t.Fatalf("want ErrVersionChanged, got %v", err)
		}
	})
}
