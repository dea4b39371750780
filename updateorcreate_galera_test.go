package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// The Galera upsert race: every goroutine makes galeraUocCalls calls on
// galeraHotKeys keys that do not exist yet, alternating an increment
// (UpdateOrCreateFunc) and a constant upsert (UpdateOrCreate).
const (
	galeraHotKeys  = 4
	galeraUocCalls = 4
)

// uocTally is what the callers of the upsert race were told, per key.
type uocTally struct {
	mu     sync.Mutex          // guards the maps
	counts map[string][]int64  // key → n returned by each increment
	tags   map[string][]string // key → v written by each constant upsert
}

func (u *uocTally) increment(key string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.counts == nil {
		u.counts = make(map[string][]int64)
	}
	u.counts[key] = append(u.counts[key], n)
}

func (u *uocTally) upsert(key, tag string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tags == nil {
		u.tags = make(map[string][]string)
	}
	u.tags[key] = append(u.tags[key], tag)
}

// TestGalera_UpdateOrCreateAcrossNodes: goroutines on every node of a
// Galera cluster increment and overwrite a few hot counters that do not
// exist yet. Row locks do not cross nodes: two nodes can read the same
// counter and both write it, and the one that commits second fails
// certification (a deadlock error, which RunInTx retries with a fresh
// read). Afterwards every node holds one row per key, made by the one
// caller told Created, whose counter equals the increments that
// succeeded, each of which saw a different value; the constant upserts'
// last value is one of theirs.
func TestGalera_UpdateOrCreateAcrossNodes(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	defer testdb.Watchdog(t, 90*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	dbs := openGaleraNodes(t, dsns)
	for _, tc := range gocRaceCases[:2] { // constraint, lock
		t.Run(tc.name, func(t *testing.T) {
			table := mustCounterTable(t, dbs[0], tc.unique)
			galeraCaughtUp(t, dbs, table)
			var ledger galeraLedger
			var tally uocTally
			var retried atomic.Int64
			conflicts := galeraConflicts(t, dbs)
			opts := racefree.Options{Strategy: tc.strategy, Retry: countCertFailures(dbs[0], &retried)}
			errs := onEveryNode(dbs, func(db *racefree.DB, g int) error {
				for i := range galeraUocCalls {
					key := "hot" + strconv.Itoa((g+i)%galeraHotKeys)
					lookup := racefree.Values{"k": key}
					tag := fmt.Sprintf("g%d-i%d", g, i)
					var row counterRow
					var created bool
					var err error
					if (i+g/galeraHotKeys)%2 == 0 { // every key gets both kinds of call
						row, created, err = racefree.UpdateOrCreateFunc(ctx, db, table, lookup,
							func(cur *counterRow) (racefree.Values, error) {
								if cur == nil {
									return racefree.Values{"n": 1}, nil
								}
								return racefree.Values{"n": cur.N + 1}, nil
							}, opts)
						if err == nil {
							tally.increment(key, row.N)
						}
					} else {
						row, created, err = racefree.UpdateOrCreate[counterRow](ctx, db, table, lookup, racefree.Values{"v": tag}, opts)
						if err == nil {
							tally.upsert(key, tag)
						}
					}
					if err != nil {
						return err
					}
					if row.K != key || row.ID == 0 {
						return fmt.Errorf("call %d on %s: row %+v", i, key, row)
					}
					ledger.record(key, row.ID, created, tag)
				}
				return nil
			})
			errorsSurfaced(t, "", errs)
			conflicts = galeraConflicts(t, dbs) - conflicts
			galeraCaughtUp(t, dbs, table)
			increments := checkIncrements(t, &tally)
			for n, db := range dbs {
				ledger.check(t, db, table, galeraHotKeys, false)
				checkCounters(t, db, table, &tally)
				if t.Failed() {
					t.Fatalf("node %d disagrees (see above)", n)
				}
			}
			if retried.Load() == 0 {
				t.Errorf("no certification failure was retried: the nodes never competed for a row")
			}
			t.Logf("%s: %d goroutines × %d calls on %d keys: %d increments, none lost; %d certification failures retried here, %d conflicts counted by the nodes",
				tc.name, len(dbs)*galeraGoroutines, galeraUocCalls, galeraHotKeys, increments, retried.Load(), conflicts)
		})
	}
	t.Run("SerializableRefused", func(t *testing.T) {
		table := mustCounterTable(t, dbs[0], false)
		opts := racefree.Options{Strategy: racefree.StrategySerializable}
		lookup := racefree.Values{"k": "hot0"}
		_, _, err := racefree.UpdateOrCreate[counterRow](ctx, dbs[0], table, lookup, racefree.Values{"v": "x"}, opts)
		if !errors.Is(err, racefree.ErrStrategyUnavailable) {
			t.Errorf("UpdateOrCreate: err = %v, want ErrStrategyUnavailable", err)
		}
		called := false
		_, _, err = racefree.UpdateOrCreateFunc(ctx, dbs[0], table, lookup, func(*counterRow) (racefree.Values, error) {
			called = true
			return racefree.Values{"n": 1}, nil
		}, opts)
		if !errors.Is(err, racefree.ErrStrategyUnavailable) || called {
			t.Errorf("UpdateOrCreateFunc: err = %v, update called = %v; want ErrStrategyUnavailable before any update", err, called)
		}
		if n := testdb.QueryInt(t, dbs[0], "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Errorf("refused calls wrote %d rows", n)
		}
	})
}

// checkIncrements fails tb unless the counters returned by the increments
// of each key are 1, 2, … up to their number: a lost update shows as two
// increments returning the same value. It returns the increments.
func checkIncrements(tb testing.TB, tally *uocTally) int {
	tb.Helper()
	total := 0
	for key, got := range tally.counts {
		slices.Sort(got)
		for i, n := range got {
			if n != int64(i+1) {
				tb.Errorf("key %s: increments returned %v, want 1…%d", key, got, len(got))
				break
			}
		}
		total += len(got)
	}
	return total
}

// checkCounters fails tb unless each row of table, read on db, counts
// exactly the increments of its key, and holds the value of one of the
// constant upserts of its key.
func checkCounters(tb testing.TB, db *racefree.DB, table string, tally *uocTally) {
	tb.Helper()
	rs, err := db.SQL().QueryContext(context.Background(), "SELECT k, n, COALESCE(v, '') FROM "+table)
	if err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
	defer rs.Close()
	for rs.Next() {
		var k, v string
		var n int64
		if err := rs.Scan(&k, &n, &v); err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		if want := int64(len(tally.counts[k])); n != want {
			tb.Errorf("key %s: counter %d, %d increments succeeded: %d lost", k, n, want, want-n)
		}
		if !slices.Contains(tally.tags[k], v) {
			tb.Errorf("key %s: v = %q, written by no constant upsert of the key", k, v)
		}
	}
	if err := rs.Err(); err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
}
