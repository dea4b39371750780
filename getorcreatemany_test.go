package racefree_test

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
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

func TestGetOrCreateMany_Basic(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "gocm", gocUsersDDL)
		old, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "old@x"}, racefree.Values{"name": "Old"}, racefree.Options{})
		if err != nil {
			t.Fatal(err)
		}
		items := []racefree.Item{
			{Lookup: racefree.Values{"email": "a@x"}, Defaults: racefree.Values{"name": "A1"}},
			{Lookup: racefree.Values{"email": "old@x"}, Defaults: racefree.Values{"name": "ignored"}},
			{Lookup: racefree.Values{"email": "a@x"}, Defaults: racefree.Values{"name": "A2"}},
			{Lookup: racefree.Values{"email": "b@x"}, Defaults: racefree.Values{"name": "B"}},
		}
		res, err := racefree.GetOrCreateMany[gocUser](ctx, db, table, items, racefree.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(items) {
			t.Fatalf("%d results for %d items", len(res), len(items))
		}
		wantCreated := []bool{true, false, false, true}
		wantName := []string{"A1", "Old", "A1", "B"}
		for i, r := range res {
			if r.Created != wantCreated[i] || r.Row.Name != wantName[i] || r.Row.Email != items[i].Lookup["email"] || r.Row.ID == 0 {
				t.Errorf("item %d: %+v, want created=%v name=%s", i, r, wantCreated[i], wantName[i])
			}
		}
		if res[0].Row.ID != res[2].Row.ID || res[1].Row.ID != old.ID {
			t.Errorf("ids: %d %d %d (old %d)", res[0].Row.ID, res[1].Row.ID, res[2].Row.ID, old.ID)
		}
		// All exist now: nothing created, same ids.
		again, err := racefree.GetOrCreateMany[gocUser](ctx, db, table, items, racefree.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range again {
			if again[i].Created || again[i].Row != res[i].Row {
				t.Errorf("again item %d: %+v, want %+v", i, again[i], res[i].Row)
			}
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 3 {
			t.Fatalf("rows = %d, want 3", n)
		}
	})
}

// manyItems is a batch over keys k0…k(n-1) in a random order, with repeats.
func manyItems(r *rand.Rand, keys, size int) []racefree.Item {
	items := make([]racefree.Item, size)
	for i := range items {
		items[i] = racefree.Item{Lookup: racefree.Values{"k": "k" + strconv.Itoa(r.IntN(keys))}, Defaults: racefree.Values{"v": "x"}}
	}
	return items
}

const (
	manyKeys = 200
	manySize = 50
)

// runManyWorkers runs n goroutines, each calling GetOrCreateMany twice on
// overlapping random batches, and returns the created count.
func runManyWorkers(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, n int, seed uint64) (int64, []error) {
	var created atomic.Int64
	var mu sync.Mutex // guards errs
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			<-start
			for range 2 {
				items := manyItems(r, manyKeys, manySize)
				res, err := racefree.GetOrCreateMany[struct {
					ID int64  `db:"id"`
					K  string `db:"k"`
				}](ctx, db, table, items, racefree.Options{Strategy: strategy})
				if err == nil {
					for i, x := range res {
						if x.Row.K != items[i].Lookup["k"] || x.Row.ID == 0 {
							err = fmt.Errorf("item %d: row %+v for %v", i, x.Row, items[i].Lookup)
							break
						}
						if x.Created {
							created.Add(1)
						}
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return created.Load(), errs
}

func checkManyTable(tb testing.TB, db *racefree.DB, table string, created int64) {
	tb.Helper()
	rows := testdb.QueryInt(tb, db, "SELECT COUNT(*) FROM "+table)
	keys := testdb.QueryInt(tb, db, "SELECT COUNT(DISTINCT k) FROM "+table)
	if rows != keys {
		tb.Errorf("%d rows for %d keys: %d duplicates", rows, keys, rows-keys)
	}
	if created != rows {
		tb.Errorf("sum of created = %d, rows = %d", created, rows)
	}
}

func TestGetOrCreateMany_RaceGoroutines(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, tc := range gocRaceCases {
			t.Run(tc.name, func(t *testing.T) {
				defer testdb.Watchdog(t, 90*time.Second)()
				db := e.Open(t)
				if !strategyRuns(db, tc.strategy) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				db.SQL().SetMaxOpenConns(gocPool * 2)
				table := mustRaceTable(t, db, tc.unique)
				ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
				defer cancel()
				created, errs := runManyWorkers(ctx, db, table, tc.strategy, gocGoroutines, 1)
				errorsSurfaced(t, "", errs)
				checkManyTable(t, db, table, created)
				t.Logf("%s/%s: %d goroutines × 2 batches of %d over %d keys: %d created", e.Name, tc.name, gocGoroutines, manySize, manyKeys, created)
			})
		}
	})
}

func TestGetOrCreateMany_RaceProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 150*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		table := mustRaceTable(t, db, true)
		results := proctest.Run(t, gocProcs, "TestGetOrCreateManyChild", map[string]string{"dsn": dsn, "table": table}, 140*time.Second)
		var created int64
		vals := proctest.Values(results, "created")
		if len(vals) != gocProcs {
			t.Fatalf("%d children reported, want %d", len(vals), gocProcs)
		}
		for _, v := range vals {
			n, _ := strconv.ParseInt(v, 10, 64)
			created += n
		}
		checkManyTable(t, db, table, created)
	})
}

// TestGetOrCreateManyChild is one process of TestGetOrCreateMany_RaceProcesses.
func TestGetOrCreateManyChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 130*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(gocPool)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	created, errs := runManyWorkers(ctx, db, args.Values["table"], racefree.StrategyConstraint, gocGoroutines, uint64(args.Index)+100)
	errorsSurfaced(t, "", errs)
	proctest.Report("created", created)
}

func TestLink_Race(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(gocPool * 2)
		table := testdb.CreateTable(t, db, "link", `post_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (post_id, tag_id)`)
		link := racefree.Values{"post_id": 1, "tag_id": 7}
		race := func(f func() (bool, error)) int32 {
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range gocGoroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, err := f()
					if err != nil {
						t.Errorf("error surfaced: %v", err)
					}
					if ok {
						wins.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			return wins.Load()
		}
		if n := race(func() (bool, error) { return racefree.Link(ctx, db, table, link, racefree.Options{}) }); n != 1 {
			t.Errorf("%d callers created the link, want 1", n)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Errorf("rows = %d, want 1", n)
		}
		if n := race(func() (bool, error) { return racefree.Unlink(ctx, db, table, link, racefree.Options{}) }); n != 1 {
			t.Errorf("%d callers deleted the link, want 1", n)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Errorf("rows = %d, want 0", n)
		}
	})
}

// TestUnlink_AnyTable: Unlink needs no index and does not care about
// columns it does not name (a NOT NULL column without default included).
func TestUnlink_AnyTable(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "unlink", `post_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, note {{text}} NOT NULL`)
		testdb.Exec(t, db, "INSERT INTO "+table+" (post_id, tag_id, note) VALUES (1, 2, 'x')")
		for i, want := range []bool{true, false} {
			deleted, err := racefree.Unlink(ctx, db, table, racefree.Values{"post_id": 1, "tag_id": 2}, racefree.Options{})
			if err != nil || deleted != want {
				t.Fatalf("call %d: deleted=%v err=%v, want %v", i, deleted, err, want)
			}
		}
		if _, err := racefree.Unlink(ctx, db, table, racefree.Values{}, racefree.Options{}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("empty link: err = %v, want ErrInvalidInput", err)
		}
		// Options that cannot apply to a delete are refused, not ignored.
		link := racefree.Values{"post_id": 1, "tag_id": 2}
		for _, opts := range []racefree.Options{{Strategy: racefree.StrategyLock}, {Adaptive: true}, {CreateOnly: racefree.Values{"note": "x"}}} {
			if _, err := racefree.Unlink(ctx, db, table, link, opts); !errors.Is(err, racefree.ErrInvalidInput) {
				t.Fatalf("Unlink with %+v: err = %v, want ErrInvalidInput", opts, err)
			}
		}
	})
}
