package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// gocmRow is a row of the batch tests' tables.
type gocmRow struct {
	ID int64  `db:"id"`
	K  string `db:"k"`
}

// TestGetOrCreateMany_IntegerLookup: rows come back matched to their keys
// whatever type the driver gives the lookup column in (MySQL's text
// protocol gives integers as text).
func TestGetOrCreateMany_IntegerLookup(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "gocm_int", `id {{id}}, a INTEGER NOT NULL, b INTEGER NOT NULL, v {{text}}, CONSTRAINT {{table}}_ab UNIQUE (a, b)`)
		type row struct {
			ID int64 `db:"id"`
			A  int64 `db:"a"`
			B  int64 `db:"b"`
		}
		var items []racefree.Item
		for i := range 10 {
			items = append(items, racefree.Item{Lookup: racefree.Values{"a": i % 3, "b": int64(i)}, Defaults: racefree.Values{"v": "x"}})
		}
		for round := range 2 {
			res, err := racefree.GetOrCreateMany[row](ctx, db, table, items, racefree.Options{})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for i, r := range res {
				if r.Row.A != int64(i%3) || r.Row.B != int64(i) || r.Created != (round == 0) {
					t.Errorf("round %d item %d: %+v", round, i, r)
				}
			}
		}
	})
}

// TestGetOrCreateMany_ValueTooLong: a value the column cannot hold fails the
// batch and writes no row, on every engine. On MariaDB the batch inserts
// with IGNORE, which would store the value cut short: the warning count
// must catch it (ErrInvalidInput). In the caller's transaction the batch
// is undone alone and the transaction goes on.
func TestGetOrCreateMany_ValueTooLong(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite stores any length in a VARCHAR(5)")
		}
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "gocm_long", `id {{id}}, k {{text}} NOT NULL, v VARCHAR(5), CONSTRAINT {{table}}_k UNIQUE (k)`)
		if _, _, err := racefree.GetOrCreate[gocmRow](ctx, db, table, racefree.Values{"k": "old"}, racefree.Values{"v": "fine"}, racefree.Options{}); err != nil {
			t.Fatal(err)
		}
		items := func(tag string) []racefree.Item {
			return []racefree.Item{
				{Lookup: racefree.Values{"k": "old"}, Defaults: racefree.Values{"v": "fine"}},
				{Lookup: racefree.Values{"k": tag + "1"}, Defaults: racefree.Values{"v": "ok"}},
				{Lookup: racefree.Values{"k": tag + "2"}, Defaults: racefree.Values{"v": "much too long"}},
				{Lookup: racefree.Values{"k": tag + "3"}, Defaults: racefree.Values{"v": "ok"}},
			}
		}
		_, err := racefree.GetOrCreateMany[gocmRow](ctx, db, table, items("a"), racefree.Options{})
		if err == nil {
			t.Fatal("a value longer than VARCHAR(5) was accepted")
		}
		// With INSERT IGNORE (MariaDB) the server would only warn and store
		// the value cut: racefree catches it. Without (TiDB, MySQL 8) the
		// server refuses the statement (1406) itself.
		if f := db.Dialect().Features(); f.Has(dialect.OnDuplicateKey|dialect.Returning) && !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("err = %v, want ErrInvalidInput", err)
		}
		t.Log(err)
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Fatalf("rows = %d, want 1: the failed batch wrote rows", n)
		}

		// In the caller's transaction.
		sqlTx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sqlTx.Rollback()
		tx := db.WrapTx(sqlTx, nil)
		if _, err := racefree.GetOrCreateMany[gocmRow](ctx, tx, table, items("b"), racefree.Options{}); err == nil {
			t.Fatal("in tx: a value longer than VARCHAR(5) was accepted")
		}
		if _, created, err := racefree.GetOrCreate[gocmRow](ctx, tx, table, racefree.Values{"k": "c"}, racefree.Values{"v": "ok"}, racefree.Options{}); err != nil || !created {
			t.Fatalf("after the failed batch the transaction must go on: created=%v err=%v", created, err)
		}
		if err := sqlTx.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != 2 {
			t.Fatalf("rows = %d, want 2 (old and c): the failed batch wrote rows", got)
		}
	})
}

// TestGetOrCreateMany_OtherUniqueIndex: a key that conflicts with another
// unique index than the lookup's fails the batch with that violation
// (ErrUniqueViolation, naming the index) and no row of the batch is
// written, even when the batch takes several statements; in the caller's
// transaction the batch is undone alone.
func TestGetOrCreateMany_OtherUniqueIndex(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "gocm_two", `id {{id}}, k {{text}} NOT NULL, v {{text}},
			CONSTRAINT {{table}}_k UNIQUE (k), CONSTRAINT {{table}}_v UNIQUE (v)`)
		if _, _, err := racefree.GetOrCreate[gocmRow](ctx, db, table, racefree.Values{"k": "taken"}, racefree.Values{"v": "taken"}, racefree.Options{}); err != nil {
			t.Fatal(err)
		}
		// More than one statement on SQLite (100 keys are 64 + 32 + 4, 300
		// are 2 × 128 + 32 + 8 + 4). The conflicting key sorts last, so
		// that the statements before it succeed.
		items := func(tag string, n int) []racefree.Item {
			var items []racefree.Item
			for i := range n - 2 {
				k := fmt.Sprintf("%s%03d", tag, i)
				items = append(items, racefree.Item{Lookup: racefree.Values{"k": k}, Defaults: racefree.Values{"v": k}})
			}
			items = append(items, racefree.Item{Lookup: racefree.Values{"k": tag + "zzz"}, Defaults: racefree.Values{"v": "taken"}})
			items = append(items, racefree.Item{Lookup: racefree.Values{"k": "taken"}, Defaults: racefree.Values{"v": "whatever"}})
			return items
		}
		check := func(err error) {
			t.Helper()
			if !errors.Is(err, racefree.ErrUniqueViolation) {
				t.Fatalf("err = %v, want ErrUniqueViolation", err)
			}
			var ce *dialect.Error
			if !errors.As(err, &ce) || (ce.Constraint != table+"_v" && !slices.Contains(ce.Columns, table+".v")) {
				t.Fatalf("err = %v (%+v), want the violation of %s_v", err, ce, table)
			}
		}
		rows := int64(1)
		for _, n := range []int{100, 300} {
			_, err := racefree.GetOrCreateMany[gocmRow](ctx, db, table, items(fmt.Sprintf("a%d-", n), n), racefree.Options{})
			check(err)
			if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != rows {
				t.Fatalf("%d keys: rows = %d, want %d: the failed batch wrote rows", n, got, rows)
			}

			sqlTx, err := db.SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			tx := db.WrapTx(sqlTx, nil)
			_, err = racefree.GetOrCreateMany[gocmRow](ctx, tx, table, items(fmt.Sprintf("b%d-", n), n), racefree.Options{})
			check(err)
			k := fmt.Sprintf("c%d", n)
			if _, created, err := racefree.GetOrCreate[gocmRow](ctx, tx, table, racefree.Values{"k": k}, racefree.Values{"v": k}, racefree.Options{}); err != nil || !created {
				sqlTx.Rollback()
				t.Fatalf("after the failed batch the transaction must go on: created=%v err=%v", created, err)
			}
			if err := sqlTx.Commit(); err != nil {
				t.Fatal(err)
			}
			rows++
			if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != rows {
				t.Fatalf("%d keys in a transaction: rows = %d, want %d: the failed batch wrote rows", n, got, rows)
			}
		}
	})
}

// TestGetOrCreateMany_RepeatableReadRace: goroutines, each in its own
// REPEATABLE READ transaction whose snapshot predates the batch, create
// overlapping keys: no error reaches them, one row and one creator per
// key. On MariaDB the snapshot cannot see the rows another batch created
// (the re-read must lock); on PostgreSQL the transaction restarts.
func TestGetOrCreateMany_RepeatableReadRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no REPEATABLE READ; its write transactions are serial")
		}
		defer testdb.Watchdog(t, 90*time.Second)()
		ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
		defer cancel()
		db := e.Open(t)
		const batches = 16
		db.SQL().SetMaxOpenConns(batches + 4) // every batch's transaction open at once, and some to spare
		table := mustRaceTable(t, db, true)
		var created, restarts atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		// Every first attempt takes its snapshot before any batch writes,
		// so that each snapshot predates the others' rows however the
		// scheduler runs the goroutines (a starved CI machine ran them one
		// after the other, and nothing raced).
		var snapshots sync.WaitGroup
		snapshots.Add(batches)
		for g := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(7, uint64(g)))
				items := manyItems(r, 40, 30)
				<-start
				attempts := 0
				var res []racefree.ItemResult[gocmRow]
				err := racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
					attempts++
					_, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM "+table)
					if attempts == 1 {
						snapshots.Done()
						if err == nil {
							snapshots.Wait()
						}
					}
					if err != nil {
						return err
					}
					res, err = racefree.GetOrCreateMany[gocmRow](ctx, tx, table, items, racefree.Options{})
					return err
				})
				if err != nil {
					t.Errorf("error surfaced: %v", err)
					return
				}
				restarts.Add(int64(attempts - 1))
				for i, x := range res {
					if x.Row.K != items[i].Lookup["k"] || x.Row.ID == 0 {
						t.Errorf("item %d: row %+v for %v", i, x.Row, items[i].Lookup)
					}
					if x.Created {
						created.Add(1)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		checkManyTable(t, db, table, created.Load())
		lost := racefree.LostRaces(db)
		if restarts.Load() == 0 && lost == 0 {
			t.Fatal("no batch restarted and no key was lost to another batch: the test did not race")
		}
		t.Logf("%s: 16 REPEATABLE READ batches over 40 keys: %d rows, %d restarts, %d keys lost to another batch", e.Name, created.Load(), restarts.Load(), lost)
	})
}

// TestGetOrCreateMany_ConnOnMemory: on a *Conn of an in-memory SQLite
// database, whose pool has that one connection, a batch that takes several
// statements must not wait for a second connection.
func TestGetOrCreateMany_ConnOnMemory(t *testing.T) {
	defer testdb.Watchdog(t, 30*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db := testdb.Open(t, "sqlite::memory:")
	table := testdb.CreateTable(t, db, "gocm_mem", `id {{id}}, k {{text}} NOT NULL, v {{text}}, CONSTRAINT {{table}}_k UNIQUE (k)`)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	items := make([]racefree.Item, 300)
	for i := range items {
		items[i] = racefree.Item{Lookup: racefree.Values{"k": fmt.Sprint("k", i)}, Defaults: racefree.Values{"v": "x"}}
	}
	res, err := racefree.GetOrCreateMany[gocmRow](ctx, conn, table, items, racefree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Created || r.Row.K != items[i].Lookup["k"] {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
}
