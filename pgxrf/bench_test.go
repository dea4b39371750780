package pgxrf_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkPgx measures racefree over pgx against raw pgx on the same pool,
// in one run. Each iteration runs the raw statement and the racefree call
// back to back (alternating which goes first) and times both, so that load
// on the machine hits both alike; it reports raw-ns/op, racefree-ns/op and
// x-raw = raw time / racefree time (1.0 is as fast as raw pgx):
//
//	Hit:     GetOrCreate of an existing row (by its unique email) vs
//	         pool.QueryRow of the primary key (target ≥ 0.95)
//	         (-values: the row read as racefree.Values; -vs-unique-select:
//	         against a raw SELECT by the same unique key)
//	Miss:    CreateOrGet, adaptive GetOrCreate and select-first GetOrCreate
//	         of a new row vs INSERT … ON CONFLICT DO NOTHING RETURNING
//	         (target ≥ 0.9 for the insert-first ones; select-first pays
//	         its SELECT by design)
//	Batch1000: GetOrCreateMany of 1000 new keys vs 1000 GetOrCreate calls
//	         (x-raw is the batch's speed-up; target ≥ 20)
//
// Run: go test -run '^$' -bench BenchmarkPgx ./pgxrf
func BenchmarkPgx(b *testing.B) {
	_, check, db, pool := open(b, 8)
	ctx := context.Background()
	table := testdb.CreateTable(b, check, "pgxrf_bench", usersDDL)
	var seq atomic.Int64
	newKey := func() string { return "u" + strconv.FormatInt(seq.Add(1), 10) + "@x" }
	mustB := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	hit, _, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
	mustB(err)

	pkSelect := "SELECT id, email, name FROM " + table + " WHERE id = $1"
	rawHit := func() {
		var u user
		mustB(pool.QueryRow(ctx, pkSelect, hit.ID).Scan(&u.ID, &u.Email, &u.Name))
	}
	b.Run("Hit", func(b *testing.B) {
		pair(b, rawHit, func() {
			_, _, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
			mustB(err)
		})
	})
	b.Run("Hit-values", func(b *testing.B) {
		pair(b, rawHit, func() {
			_, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
			mustB(err)
		})
	})
	uniqueSelect := "SELECT id, email, name FROM " + table + " WHERE email = $1"
	b.Run("Hit-vs-unique-select", func(b *testing.B) {
		pair(b, func() {
			var u user
			mustB(pool.QueryRow(ctx, uniqueSelect, "hit@x").Scan(&u.ID, &u.Email, &u.Name))
		}, func() {
			_, _, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
			mustB(err)
		})
	})

	rawInsert := "INSERT INTO " + table + " (email, name) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id, email, name"
	rawMiss := func() {
		var u user
		mustB(pool.QueryRow(ctx, rawInsert, newKey(), "M").Scan(&u.ID, &u.Email, &u.Name))
	}
	for _, tc := range []struct {
		name string
		call func() (bool, error)
	}{
		{"CreateOrGet", func() (bool, error) {
			_, c, err := racefree.CreateOrGet[user](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{})
			return c, err
		}},
		{"GetOrCreate-adaptive", func() (bool, error) {
			_, c, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{Adaptive: true})
			return c, err
		}},
		{"GetOrCreate-select-first", func() (bool, error) {
			_, c, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{})
			return c, err
		}},
	} {
		b.Run("Miss/"+tc.name, func(b *testing.B) {
			pair(b, rawMiss, func() {
				c, err := tc.call()
				mustB(err)
				if !c {
					b.Fatal("not created")
				}
			})
		})
	}

	const batch = 1000
	b.Run("Batch1000", func(b *testing.B) {
		items := make([]racefree.Item, batch)
		pair(b, func() {
			for range batch {
				_, _, err := racefree.GetOrCreate[user](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "B"}, racefree.Options{})
				mustB(err)
			}
		}, func() {
			for i := range items {
				items[i] = racefree.Item{Lookup: racefree.Values{"email": newKey()}, Defaults: racefree.Values{"name": "B"}}
			}
			_, err := racefree.GetOrCreateMany[user](ctx, db, table, items, racefree.Options{})
			mustB(err)
		})
	})
}

// pair times raw and ours alternately and reports both and their ratio.
func pair(b *testing.B, raw, ours func()) {
	b.Helper()
	b.ReportAllocs()
	var tRaw, tOurs time.Duration
	i := 0
	for b.Loop() {
		i++
		first, second := raw, ours
		if i%2 == 1 {
			first, second = ours, raw
		}
		s := time.Now()
		first()
		d1 := time.Since(s)
		s = time.Now()
		second()
		d2 := time.Since(s)
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		tRaw += d1
		tOurs += d2
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(i), "raw-ns/op")
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(i), "racefree-ns/op")
	b.ReportMetric(float64(tRaw)/float64(tOurs), "x-raw")
}
