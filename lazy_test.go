package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// lazyCounter returns a Lazy value that counts its calls.
func lazyCounter(n *atomic.Int64, v any) racefree.Lazy {
	return func(context.Context) (any, error) {
		n.Add(1)
		return v, nil
	}
}

func TestLazy_NeverRunsOnAHit(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "lazy", "id {{id}}, email {{text}} NOT NULL, token {{text}} NOT NULL, note {{text}}, CONSTRAINT {{table}}_email UNIQUE (email)")
		type row struct {
			ID    int64  `db:"id"`
			Token string `db:"token"`
		}
		var calls atomic.Int64
		defaults := func(v string) racefree.Values {
			return racefree.Values{"token": lazyCounter(&calls, v)}
		}
		r, created, err := racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"email": "a@x"}, defaults("t1"), racefree.Options{})
		if err != nil || !created || r.Token != "t1" || calls.Load() != 1 {
			t.Fatalf("miss: %+v created=%v err=%v, %d calls; want the Lazy value written, computed once", r, created, err, calls.Load())
		}
		for _, verb := range []string{"GetOrCreate", "CreateOrGet", "GetOrCreateMany"} {
			switch verb {
			case "GetOrCreate":
				r, created, err = racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"email": "a@x"}, defaults("t2"), racefree.Options{})
			case "CreateOrGet":
				r, created, err = racefree.CreateOrGet[row](ctx, db, table, racefree.Values{"email": "a@x"}, defaults("t2"), racefree.Options{})
			case "GetOrCreateMany":
				var res []racefree.ItemResult[row]
				res, err = racefree.GetOrCreateMany[row](ctx, db, table, []racefree.Item{{Lookup: racefree.Values{"email": "a@x"}, Defaults: defaults("t2")}}, racefree.Options{})
				if err == nil {
					r, created = res[0].Row, res[0].Created
				}
			}
			if err != nil || created || r.Token != "t1" {
				t.Fatalf("%s hit: %+v created=%v err=%v", verb, r, created, err)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("the Lazy value ran %d times, want once (the miss): it ran on a hit", n)
		}

		// A batch computes the Lazy values of the keys it creates only.
		calls.Store(0)
		items := []racefree.Item{
			{Lookup: racefree.Values{"email": "a@x"}, Defaults: defaults("x")},
			{Lookup: racefree.Values{"email": "b@x"}, Defaults: defaults("tb")},
			{Lookup: racefree.Values{"email": "c@x"}, Defaults: defaults("tc")},
		}
		res, err := racefree.GetOrCreateMany[row](ctx, db, table, items, racefree.Options{})
		if err != nil || res[1].Row.Token != "tb" || !res[2].Created || calls.Load() != 2 {
			t.Fatalf("batch: %+v err=%v, %d calls; want 2 (b and c)", res, err, calls.Load())
		}

		// UpdateOrCreate: a Lazy create-only value runs only to create.
		calls.Store(0)
		if _, created, err = racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"email": "a@x"}, racefree.Values{"note": "n"},
			racefree.Options{CreateOnly: defaults("never")}); err != nil || created || calls.Load() != 0 {
			t.Fatalf("update of an existing row: created=%v err=%v, %d Lazy calls; want none", created, err, calls.Load())
		}
		if r, created, err = racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"email": "d@x"}, racefree.Values{"note": "n"},
			racefree.Options{CreateOnly: defaults("td")}); err != nil || !created || r.Token != "td" || calls.Load() != 1 {
			t.Fatalf("update that creates: %+v created=%v err=%v, %d Lazy calls; want 1", r, created, err, calls.Load())
		}
	})
}

func TestLazy_ErrorWritesNothing(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "lazyerr", "id {{id}}, email {{text}} NOT NULL, token {{text}} NOT NULL, CONSTRAINT {{table}}_email UNIQUE (email)")
		type row struct {
			ID int64 `db:"id"`
		}
		boom := errors.New("token service down")
		failing := racefree.Values{"token": racefree.Lazy(func(context.Context) (any, error) { return nil, boom })}
		_, _, err := racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"email": "a@x"}, failing, racefree.Options{})
		if !errors.Is(err, boom) {
			t.Fatalf("GetOrCreate: err = %v, want the Lazy value's error", err)
		}
		_, err = racefree.GetOrCreateMany[row](ctx, db, table, []racefree.Item{{Lookup: racefree.Values{"email": "b@x"}, Defaults: failing}}, racefree.Options{})
		if !errors.Is(err, boom) {
			t.Fatalf("GetOrCreateMany: err = %v, want the Lazy value's error", err)
		}
		nilToken := racefree.Values{"token": racefree.Lazy(func(context.Context) (any, error) { return nil, nil })}
		if _, _, err = racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"email": "c@x"}, nilToken, racefree.Options{}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("a Lazy NULL for a NOT NULL column: err = %v, want ErrInvalidInput", err)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows written", n)
		}
		lazyLookup := racefree.Values{"email": racefree.Lazy(func(context.Context) (any, error) { return "x", nil })}
		if _, _, err = racefree.GetOrCreate[row](ctx, db, table, lazyLookup, nil, racefree.Options{}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("a Lazy lookup: err = %v, want ErrInvalidInput", err)
		}
	})
}

// TestLazy_RaceRunsOncePerCreatedRow: under a storm on fresh keys, a Lazy
// default runs only in calls that go on to insert: each either created a
// row or lost the race to create it, so the runs are exactly the rows
// plus the lost races.
func TestLazy_RaceRunsOncePerCreatedRow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(4)
		table := testdb.CreateTable(t, db, "lazyrace", "id {{id}}, k {{text}} NOT NULL, token {{text}} NOT NULL, CONSTRAINT {{table}}_k UNIQUE (k)")
		type row struct {
			ID    int64  `db:"id"`
			Token string `db:"token"`
		}
		var calls atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex // guards tokens
		tokens := map[int64]string{}
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					k := fmt.Sprintf("k%d", i%5)
					r, _, err := racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"k": k},
						racefree.Values{"token": lazyCounter(&calls, fmt.Sprintf("g%d", g))}, racefree.Options{})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, ok := tokens[r.ID]; ok && prev != r.Token {
						t.Errorf("row %d read as %q and %q", r.ID, prev, r.Token)
					}
					tokens[r.ID] = r.Token
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		lost := racefree.LostRaces(db)
		if n := calls.Load(); n != 5+lost {
			t.Fatalf("the Lazy value ran %d times for 5 rows and %d lost races", n, lost)
		}
		t.Logf("%d calls on 5 keys ran the Lazy value %d times: 5 rows, %d lost races", 32*20, calls.Load(), lost)
	})
}
