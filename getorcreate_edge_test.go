package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// insertOther inserts key k from outside the operation under test, as a
// concurrent winner would.
func insertOther(tb testing.TB, db *racefree.DB, table, k string) {
	tb.Helper()
	testdb.Exec(tb, db, "INSERT INTO "+table+" (email, name) VALUES ("+db.Dialect().Placeholder(1)+", 'winner')", k)
}

// TestGetOrCreate_DeleteRace forces "the winner's row is deleted between
// our conflict and our re-read": GetOrCreate must go round and create it.
func TestGetOrCreate_DeleteRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_del", gocUsersDDL)
		var inserted, deleted atomic.Int32
		restore := racefree.SetGetOrCreateHooks(func() {
			if inserted.Add(1) == 1 {
				insertOther(t, db, table, "d@x")
			}
		}, func() {
			if deleted.Add(1) == 1 {
				testdb.Exec(t, db, "DELETE FROM "+table)
			}
		})
		u, created, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "d@x"}, racefree.Values{"name": "me"}, racefree.Options{})
		restore()
		if err != nil || !created || u.Name != "me" {
			t.Fatalf("got %+v created=%v err=%v, want our row created", u, created, err)
		}
		if inserted.Load() != 2 || deleted.Load() != 1 {
			t.Fatalf("hooks ran %d/%d times: the interleaving was not forced", inserted.Load(), deleted.Load())
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}

		// A row that vanishes every time: the loop is bounded.
		restore = racefree.SetGetOrCreateHooks(func() { insertOther(t, db, table, "v@x") },
			func() { testdb.Exec(t, db, "DELETE FROM "+table+" WHERE email = 'v@x'") })
		_, _, err = racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "v@x"}, nil, racefree.Options{})
		restore()
		if !errors.Is(err, racefree.ErrRowVanished) {
			t.Fatalf("err = %v, want ErrRowVanished", err)
		}
	})
}

// TestGetOrCreate_RepeatableReadCallerTx forces the invisible winner: the
// caller's REPEATABLE READ transaction took its snapshot, then another
// session created the row. MariaDB must find it with a locking re-read;
// PostgreSQL must ask for a restart, which RunInTx performs.
func TestGetOrCreate_RepeatableReadCallerTx(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite write transactions exclude every other writer: no winner can commit meanwhile")
		}
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_rr", gocUsersDDL)
		var fired atomic.Int32
		restore := racefree.SetGetOrCreateHooks(func() {
			if fired.Add(1) == 1 {
				insertOther(t, db, table, "rr@x")
			}
		}, nil)
		defer restore()
		attempts := 0
		var u gocUser
		var created bool
		err := racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
			attempts++
			// Take the snapshot before the winner commits.
			if _, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM "+table); err != nil {
				return err
			}
			var err error
			u, created, err = racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "rr@x"}, racefree.Values{"name": "me"}, racefree.Options{})
			if e.Name == "postgres" && attempts == 1 && !errors.Is(err, racefree.ErrSerialization) {
				t.Errorf("first attempt on PostgreSQL: err = %v, want ErrSerialization", err)
			}
			return err
		})
		if err != nil || created || u.Name != "winner" {
			t.Fatalf("got %+v created=%v err=%v after %d attempts, want the winner's row", u, created, err, attempts)
		}
		want := map[string]int{"postgres": 2, "mysql": 1}[e.Name]
		if attempts != want {
			t.Fatalf("%d attempts, want %d", attempts, want)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
	})
}

// TestGetOrCreate_SecondUniqueIndex: a conflict on another unique index
// than the lookup's is the caller's error, not a lost race; inside the
// caller's transaction it does not poison it (PostgreSQL savepoint).
func TestGetOrCreate_SecondUniqueIndex(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_two", `id {{id}}, email {{text}} NOT NULL, name {{text}} NOT NULL,
			CONSTRAINT {{table}}_email UNIQUE (email), CONSTRAINT {{table}}_name UNIQUE (name)`)
		if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"name": "taken"}, racefree.Options{}); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"GetOrCreate", "CreateOrGet", "Many"} {
			var err error
			switch op {
			case "GetOrCreate":
				_, _, err = racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "b@x"}, racefree.Values{"name": "taken"}, racefree.Options{})
			case "CreateOrGet":
				_, _, err = racefree.CreateOrGet[gocUser](ctx, db, table, racefree.Values{"email": "b@x"}, racefree.Values{"name": "taken"}, racefree.Options{})
			case "Many":
				_, err = racefree.GetOrCreateMany[gocUser](ctx, db, table, []racefree.Item{{Lookup: racefree.Values{"email": "b@x"}, Defaults: racefree.Values{"name": "taken"}}}, racefree.Options{})
			}
			if !errors.Is(err, racefree.ErrUniqueViolation) {
				t.Fatalf("%s: err = %v, want ErrUniqueViolation", op, err)
			}
		}
		// In the caller's own transaction: the error, then the
		// transaction goes on and commits.
		sqlTx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx := db.WrapTx(sqlTx, nil)
		if _, _, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "c@x"}, racefree.Values{"name": "taken"}, racefree.Options{}); !errors.Is(err, racefree.ErrUniqueViolation) {
			t.Fatalf("in tx: err = %v, want ErrUniqueViolation", err)
		}
		if _, created, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "c@x"}, racefree.Values{"name": "free"}, racefree.Options{}); err != nil || !created {
			t.Fatalf("after the violation the transaction must go on: created=%v err=%v", created, err)
		}
		if err := sqlTx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 2 {
			t.Fatalf("rows = %d, want 2", n)
		}
	})
}

// TestGetOrCreate_NullLookup: a NULL lookup value is refused by the
// constraint strategy over a unique index that treats NULLs as distinct;
// StrategyAuto takes the lock strategy and makes exactly one row under 64
// goroutines; PostgreSQL 15's NULLS NOT DISTINCT index keeps the
// constraint strategy.
func TestGetOrCreate_NullLookup(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(gocPool * 2)
		table := testdb.CreateTable(t, db, "goc_null", `id {{id}}, org {{text}}, email {{text}} NOT NULL, name {{text}},
			CONSTRAINT {{table}}_oe UNIQUE (org, email)`)
		lookup := racefree.Values{"org": nil, "email": "n@x"}
		_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, lookup, nil, racefree.Options{Strategy: racefree.StrategyConstraint})
		if !errors.Is(err, racefree.ErrNullLookup) {
			t.Fatalf("constraint strategy with NULL: err = %v, want ErrNullLookup", err)
		}
		var created atomic.Int32
		var wg sync.WaitGroup
		for range gocGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, c, err := racefree.GetOrCreate[gocUser](ctx, db, table, lookup, racefree.Values{"name": "n"}, racefree.Options{})
				if err != nil {
					t.Errorf("auto strategy with NULL: %v", err)
				}
				if c {
					created.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 || created.Load() != 1 {
			t.Fatalf("rows = %d, created = %d, want 1 and 1", n, created.Load())
		}
		if e.Name == "postgres" {
			nnd := testdb.CreateTable(t, db, "goc_nnd", `id {{id}}, org {{text}}, email {{text}} NOT NULL, name {{text}},
				CONSTRAINT {{table}}_oe UNIQUE NULLS NOT DISTINCT (org, email)`)
			for i := range 2 {
				_, c, err := racefree.GetOrCreate[gocUser](ctx, db, nnd, lookup, racefree.Values{"name": "n"}, racefree.Options{Strategy: racefree.StrategyConstraint})
				if err != nil || c != (i == 0) {
					t.Fatalf("NULLS NOT DISTINCT call %d: created=%v err=%v", i, c, err)
				}
			}
		}
	})
}

// TestGetOrCreate_BadInput: every kind of bad input is refused with
// ErrInvalidInput and nothing is written.
func TestGetOrCreate_BadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_bad", gocUsersDDL)
		for _, tc := range []struct {
			name     string
			table    string
			lookup   racefree.Values
			defaults racefree.Values
		}{
			{"EmptyLookup", table, racefree.Values{}, racefree.Values{"name": "x"}},
			{"UnknownColumn", table, racefree.Values{"email": "a"}, racefree.Values{"nope": 1}},
			{"InvalidColumn", table, racefree.Values{"email; DROP TABLE x": "a"}, nil},
			{"InvalidTable", "users; DROP TABLE x", racefree.Values{"email": "a"}, nil},
			{"MissingTable", "no_such_table_goc", racefree.Values{"email": "a"}, nil},
			{"WrongType", table, racefree.Values{"email": "a"}, racefree.Values{"n": "seven"}},
			{"WrongTypeText", table, racefree.Values{"email": 42}, nil},
			{"UnsupportedType", table, racefree.Values{"email": struct{ X int }{1}}, nil},
			{"NullIntoNotNull", table, racefree.Values{"email": "a"}, racefree.Values{"name": nil}},
			{"BothLookupAndDefaults", table, racefree.Values{"email": "a"}, racefree.Values{"email": "b"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := racefree.GetOrCreate[gocUser](ctx, db, tc.table, tc.lookup, tc.defaults, racefree.Options{})
				if !errors.Is(err, racefree.ErrInvalidInput) {
					t.Fatalf("err = %v, want ErrInvalidInput", err)
				}
				_, err = racefree.GetOrCreateMany[gocUser](ctx, db, tc.table, []racefree.Item{
					{Lookup: racefree.Values{"email": "ok"}}, {Lookup: tc.lookup, Defaults: tc.defaults}}, racefree.Options{})
				if tc.table == table && !errors.Is(err, racefree.ErrInvalidInput) {
					t.Fatalf("batch: err = %v, want ErrInvalidInput", err)
				}
				t.Log(err)
			})
		}
		type noTags struct{ ID int64 }
		if _, _, err := racefree.GetOrCreate[noTags](ctx, db, table, racefree.Values{"email": "a"}, nil, racefree.Options{}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("struct without tags: err = %v", err)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows written by bad input", n)
		}
	})
}

// TestGetOrCreate_RepeatableReadRace: 64 goroutines, each in its own
// REPEATABLE READ transaction that took its snapshot before asking, race
// for one key: no error reaches them, one row, one created.
func TestGetOrCreate_RepeatableReadRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no REPEATABLE READ; its write transactions are serial")
		}
		defer testdb.Watchdog(t, 90*time.Second)()
		ctx := context.Background()
		var rec recorder // the restarts and their pauses
		db, err := racefree.Open(ctx, e.DSN(t), racefree.WithObserver(&rec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() }) // after the table's drop
		db.SQL().SetMaxOpenConns(gocPool * 3)
		table := testdb.CreateTable(t, db, "goc_rrrace", gocUsersDDL)
		var created, restarts atomic.Int32
		// The first wave — as many transactions as the pool has
		// connections — all take their snapshot before any of them
		// inserts, so that the race happens however the scheduler runs
		// the goroutines on a busy machine: all but one of the wave
		// cannot see the winner's row.
		wave := gocPool * 3
		var arrived atomic.Int32
		waveReady := make(chan struct{})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range gocGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				attempts := 0
				err := racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
					attempts++
					if _, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM "+table); err != nil {
						return err
					}
					if attempts == 1 {
						if n := arrived.Add(1); n == int32(wave) {
							close(waveReady)
						} else if n < int32(wave) {
							select {
							case <-waveReady:
							case <-time.After(10 * time.Second):
								t.Error("the first wave of transactions never all took their snapshots")
							}
						}
					}
					_, c, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "hot@x"}, racefree.Values{"name": "n"}, racefree.Options{})
					if err == nil && c {
						created.Add(1)
					}
					return err
				})
				if err != nil {
					t.Errorf("error surfaced: %v", err)
				}
				restarts.Add(int32(attempts - 1))
			}()
		}
		close(start)
		wg.Wait()
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 || created.Load() != 1 {
			t.Fatalf("rows = %d, created = %d, want 1 and 1", n, created.Load())
		}
		// The race happened: losers either restarted (a snapshot that
		// cannot see the winner) or found the winner by a locking re-read.
		lost := racefree.LostRaces(db)
		if restarts.Load()+int32(lost) < int32(wave-1) {
			t.Fatalf("%d restarts and %d lost races, want at least %d (the first wave's losers): the test did not race", restarts.Load(), lost, wave-1)
		}
		// A restart after a snapshot that could not see the winner runs at
		// once: the winner's row is committed, nothing is worth waiting for.
		paused := 0
		for _, ev := range rec.snapshot() {
			if ev.Kind == racefree.EventTxRetry && ev.Delay > 0 && errors.Is(ev.Err, racefree.ErrSerialization) {
				paused++
			}
		}
		if paused > 0 && db.Dialect().Name() == "postgres" {
			t.Errorf("%d of %d restarts paused first, want none", paused, restarts.Load())
		}
		t.Logf("%s: %d REPEATABLE READ transactions, %d restarts (%d paused), %d lost races", e.Name, gocGoroutines, restarts.Load(), paused, lost)
	})
}

// TestGetOrCreate_SwallowedSnapshotFailureRunsAgain: inside a REPEATABLE
// READ transaction of RunInTx, a row committed after the snapshot makes
// the get-or-create fail with ErrSerialization on PostgreSQL. A body that
// swallows the error and returns nil does not commit a half-done
// transaction: RunInTx runs it again, and the second attempt finds the
// row. (MariaDB's locking re-read sees the row: a lost race, no error.)
func TestGetOrCreate_SwallowedSnapshotFailureRunsAgain(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite has no REPEATABLE READ; its write transactions are serial")
		}
		defer testdb.Watchdog(t, 30*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_swallow", gocUsersDDL)
		attempts, failures := 0, 0
		err := racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
			attempts++
			if _, err := tx.ExecContext(ctx, "SELECT COUNT(*) FROM "+table); err != nil { // the snapshot
				return err
			}
			if attempts == 1 { // someone else creates the row, after the snapshot
				if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "late@x"}, racefree.Values{"name": "other"}, racefree.Options{}); err != nil {
					return err
				}
			}
			_, _, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "late@x"}, racefree.Values{"name": "n"}, racefree.Options{})
			if err != nil {
				if !errors.Is(err, racefree.ErrSerialization) {
					return err
				}
				failures++ // swallowed
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // a lost race, answered with the row
		if db.Dialect().Name() == "postgres" {
			want = 2
		}
		if attempts != want || failures != want-1 {
			t.Fatalf("%d attempts, %d swallowed failures; want %d and %d", attempts, failures, want, want-1)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
	})
}
