package racefree_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

type counterRow struct {
	ID int64  `db:"id"`
	K  string `db:"k"`
	N  int64  `db:"n"`
}

func mustCounterTable(tb testing.TB, db *racefree.DB, unique bool) string {
	tb.Helper()
	ddl := `id {{id}}, k {{text}} NOT NULL, n INTEGER NOT NULL DEFAULT 0, v {{text}}`
	if unique {
		ddl += `, CONSTRAINT {{table}}_k UNIQUE (k)`
	}
	return testdb.CreateTable(tb, db, "uoc", ddl)
}

func TestUpdateOrCreate_Basic(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		for _, tc := range []struct {
			name     string
			unique   bool
			strategy racefree.Strategy
		}{
			{"Constraint", true, racefree.StrategyConstraint},
			{"Lock", false, racefree.StrategyLock},
			{"Serializable", false, racefree.StrategySerializable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !strategyRuns(db, tc.strategy) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				table := mustCounterTable(t, db, tc.unique)
				opts := racefree.Options{Strategy: tc.strategy}
				r, created, err := racefree.UpdateOrCreate[counterRow](ctx, db, table, racefree.Values{"k": "a"}, racefree.Values{"n": 5}, opts)
				if err != nil || !created || r.N != 5 || r.K != "a" {
					t.Fatalf("create: %+v %v %v", r, created, err)
				}
				r2, created, err := racefree.UpdateOrCreate[counterRow](ctx, db, table, racefree.Values{"k": "a"}, racefree.Values{"n": 6}, opts)
				if err != nil || created || r2.N != 6 || r2.ID != r.ID {
					t.Fatalf("update: %+v %v %v", r2, created, err)
				}
				// The same values again: MySQL reports 0 changed rows.
				r3, created, err := racefree.UpdateOrCreate[counterRow](ctx, db, table, racefree.Values{"k": "a"}, racefree.Values{"n": 6}, opts)
				if err != nil || created || r3 != r2 {
					t.Fatalf("unchanged update: %+v %v %v", r3, created, err)
				}
				r4, created, err := racefree.UpdateOrCreateFunc(ctx, db, table, racefree.Values{"k": "a"},
					func(cur *counterRow) (racefree.Values, error) { return racefree.Values{"n": cur.N + 10}, nil }, opts)
				if err != nil || created || r4.N != 16 {
					t.Fatalf("update func: %+v %v %v", r4, created, err)
				}
				if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
					t.Fatalf("rows = %d", n)
				}
			})
		}
	})
}

// incrementAll runs n goroutines × calls increments of key through
// UpdateOrCreateFunc and returns how many created the row.
func incrementAll(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, n, calls int, fl *inFlight) (int64, []error) {
	var created atomic.Int64
	var mu sync.Mutex // guards errs
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range calls {
				fl.enter()
				_, c, err := racefree.UpdateOrCreateFunc(ctx, db, table, racefree.Values{"k": "hot"},
					func(cur *counterRow) (racefree.Values, error) {
						if cur == nil {
							return racefree.Values{"n": 1}, nil
						}
						return racefree.Values{"n": cur.N + 1}, nil
					}, racefree.Options{Strategy: strategy})
				fl.leave()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				} else if c {
					created.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return created.Load(), errs
}

const uocCalls = 1

// TestUpdateOrCreateFunc_NoLostUpdate: 64 goroutines in each of 4
// processes increment one counter that does not exist yet; every increment
// must land and exactly one caller creates the row.
func TestUpdateOrCreateFunc_NoLostUpdate(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 150*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		values := map[string]string{"dsn": dsn}
		tables := make([]string, len(gocRaceCases))
		for i, tc := range gocRaceCases {
			if strategyRuns(db, tc.strategy) {
				tables[i] = mustCounterTable(t, db, tc.unique)
				values["table"+strconv.Itoa(i)] = tables[i]
			}
		}
		results := proctest.Run(t, gocProcs, "TestUpdateOrCreateChild", values, 140*time.Second)
		for i, tc := range gocRaceCases {
			if tables[i] == "" {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				created := sumReported(t, results, "created"+strconv.Itoa(i))
				checkOverlapped(t, maxReported(t, results, "most"+strconv.Itoa(i)))
				if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+tables[i]); got != 1 || created != 1 {
					t.Errorf("rows = %d, created = %d, want 1 and 1", got, created)
				}
				want := int64(gocProcs * gocGoroutines * uocCalls)
				if got := testdb.QueryInt(t, db, "SELECT n FROM "+tables[i]); got != want {
					t.Errorf("counter = %d, want %d: %d updates lost", got, want, want-got)
				}
				t.Logf("%s/%s: %d processes × %d goroutines × %d increments, none lost", e.Name, tc.name, gocProcs, gocGoroutines, uocCalls)
			})
		}
	})
}

// TestUpdateOrCreateChild is one process of TestUpdateOrCreateFunc_NoLostUpdate:
// every strategy at once, gocGoroutines goroutines each.
func TestUpdateOrCreateChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	runStrategiesChild(t, args, func(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, fl *inFlight) (int64, []error) {
		return incrementAll(ctx, db, table, strategy, gocGoroutines, uocCalls, fl)
	})
}

// TestUpdateOrCreate_ConstantsRace: concurrent UpdateOrCreate with
// constant values on one missing key: one row, one creator, no error, and
// the final value is one of the written ones.
func TestUpdateOrCreate_ConstantsRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, tc := range gocRaceCases {
			t.Run(tc.name, func(t *testing.T) {
				defer testdb.Watchdog(t, 60*time.Second)()
				db := e.Open(t)
				if !strategyRuns(db, tc.strategy) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				db.SQL().SetMaxOpenConns(gocPool * 2)
				table := mustCounterTable(t, db, tc.unique)
				ctx := context.Background()
				var created atomic.Int64
				var fl inFlight
				var wg sync.WaitGroup
				start := make(chan struct{})
				for g := range gocGoroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := range uocCalls {
							fl.enter()
							r, c, err := racefree.UpdateOrCreate[counterRow](ctx, db, table, racefree.Values{"k": "hot"},
								racefree.Values{"n": g*10 + i, "v": fmt.Sprint(g)}, racefree.Options{Strategy: tc.strategy})
							fl.leave()
							if err != nil {
								t.Errorf("error surfaced: %v", err)
								return
							}
							if r.K != "hot" {
								t.Errorf("wrong row %+v", r)
							}
							if c {
								created.Add(1)
							}
						}
					}()
				}
				close(start)
				wg.Wait()
				if got := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); got != 1 || created.Load() != 1 {
					t.Errorf("rows = %d, created = %d, want 1 and 1", got, created.Load())
				}
				checkOverlapped(t, fl.most.Load())
			})
		}
	})
}
