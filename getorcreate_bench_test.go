package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkGetOrCreate measures each path against the raw statement it
// competes with, per engine. Each iteration runs the raw statement and the
// racefree call back to back (alternating which goes first) and times
// both, so that load on the machine hits both alike; the benchmark reports
// raw-ns/op, racefree-ns/op and x-raw = raw time / racefree time (1.0 is
// as fast as the raw statement; above 1 is faster):
//
//	Hit:   GetOrCreate of an existing row vs a primary-key SELECT (and
//	       vs a SELECT by the same unique key, to separate racefree's
//	       cost from the secondary index's)
//	       (Hit-in-tx: RunInTx around the hit vs BEGIN, the SELECT by the
//	       unique key, COMMIT by hand)
//	Miss:  CreateOrGet, adaptive GetOrCreate and select-first GetOrCreate
//	       of a new row vs INSERT … ON CONFLICT DO NOTHING RETURNING
//	       (MariaDB: INSERT IGNORE … RETURNING)
//	Storm: 8 parallel callers on a hot key that changes every 64 calls vs
//	       the hand-written fastest correct sequence (SELECT; INSERT … ON
//	       CONFLICT DO NOTHING RETURNING; SELECT)
//	       (Storm-nocoalesce: the same with Options.NoCoalesce)
//	Batch: GetOrCreateMany of 1000 new keys vs 1000 GetOrCreate calls
//	       (x-raw is then the batch's speed-up)
//
// Run: go test -run '^$' -bench BenchmarkGetOrCreate .
func BenchmarkGetOrCreate(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(8)
			db.SQL().SetMaxIdleConns(8)
			benchGetOrCreate(b, db)
		})
	}
}

// pair times raw and ours alternately and reports both and their ratio.
func pair(b *testing.B, raw, ours func()) {
	b.Helper()
	b.ReportAllocs()
	var tRaw, tOurs time.Duration
	i := 0
	for b.Loop() {
		i++
		if i%2 == 0 {
			s := time.Now()
			raw()
			tRaw += time.Since(s)
			s = time.Now()
			ours()
			tOurs += time.Since(s)
		} else {
			s := time.Now()
			ours()
			tOurs += time.Since(s)
			s = time.Now()
			raw()
			tRaw += time.Since(s)
		}
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(i), "raw-ns/op")
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(i), "racefree-ns/op")
	b.ReportMetric(float64(tRaw)/float64(tOurs), "x-raw")
}

func benchGetOrCreate(b *testing.B, db *racefree.DB) {
	ctx := context.Background()
	table := testdb.CreateTable(b, db, "goc_bench", gocUsersDDL)
	ph := db.Dialect().Placeholder
	var seq atomic.Int64
	newKey := func() string { return "u" + strconv.FormatInt(seq.Add(1), 10) + "@x" }
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	hit, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
	must(err)
	pkSelect := "SELECT id, email, name FROM " + table + " WHERE id = " + ph(1)
	b.Run("Hit", func(b *testing.B) {
		pair(b, func() {
			var u gocUser
			must(db.SQL().QueryRowContext(ctx, pkSelect, hit.ID).Scan(&u.ID, &u.Email, &u.Name))
		}, func() {
			_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
			must(err)
		})
	})

	// The same hit against a raw SELECT by the unique key: what the lookup
	// itself costs beyond a primary-key read is the engine's, not racefree's.
	uniqueSelect := "SELECT id, email, name FROM " + table + " WHERE email = " + ph(1)
	b.Run("Hit-vs-unique-select", func(b *testing.B) {
		pair(b, func() {
			var u gocUser
			must(db.SQL().QueryRowContext(ctx, uniqueSelect, "hit@x").Scan(&u.ID, &u.Email, &u.Name))
		}, func() {
			_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
			must(err)
		})
	})

	// The hit inside a transaction: RunInTx around GetOrCreate vs BEGIN,
	// the same SELECT by the unique key, COMMIT written on database/sql.
	b.Run("Hit-in-tx", func(b *testing.B) {
		pair(b, func() {
			tx, err := db.SQL().BeginTx(ctx, nil)
			must(err)
			var u gocUser
			must(tx.QueryRowContext(ctx, uniqueSelect, "hit@x").Scan(&u.ID, &u.Email, &u.Name))
			must(tx.Commit())
		}, func() {
			must(racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				_, _, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": "hit@x"}, racefree.Values{"name": "H"}, racefree.Options{})
				return err
			}))
		})
	})

	rawInsert := "INSERT INTO " + table + " (email, name) VALUES (" + ph(1) + ", " + ph(2) + ") ON CONFLICT (email) DO NOTHING RETURNING id, email, name"
	if db.Dialect().Name() == "mysql" {
		rawInsert = "INSERT IGNORE INTO " + table + " (email, name) VALUES (?, ?) RETURNING id, email, name"
	}
	rawMiss := func() {
		var u gocUser
		must(db.SQL().QueryRowContext(ctx, rawInsert, newKey(), "M").Scan(&u.ID, &u.Email, &u.Name))
	}
	for _, tc := range []struct {
		name string
		call func() (bool, error)
	}{
		{"CreateOrGet", func() (bool, error) {
			_, c, err := racefree.CreateOrGet[gocUser](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{})
			return c, err
		}},
		{"GetOrCreate-adaptive", func() (bool, error) {
			_, c, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{Adaptive: true})
			return c, err
		}},
		{"GetOrCreate-select-first", func() (bool, error) {
			_, c, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "M"}, racefree.Options{})
			return c, err
		}},
	} {
		b.Run("Miss/"+tc.name, func(b *testing.B) {
			pair(b, rawMiss, func() {
				c, err := tc.call()
				must(err)
				if !c {
					b.Fatal("not created")
				}
			})
		})
	}

	// Storm: the goroutines share one key, which changes every 64 calls,
	// so each key is created once under contention and then hit.
	for _, sc := range []struct {
		name string
		opts racefree.Options
	}{{"Storm", racefree.Options{}}, {"Storm-nocoalesce", racefree.Options{NoCoalesce: true}}} {
		b.Run(sc.name, func(b *testing.B) {
			b.ReportAllocs()
			var rawSeq, oursSeq atomic.Int64
			var tRaw, tOurs, n atomic.Int64
			sel := "SELECT id, email, name FROM " + table + " WHERE email = " + ph(1)
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := time.Now()
					k := "raw-" + sc.name + strconv.FormatInt(rawSeq.Add(1)/64, 10)
					var u gocUser
					err := db.SQL().QueryRowContext(ctx, sel, k).Scan(&u.ID, &u.Email, &u.Name)
					if errors.Is(err, sql.ErrNoRows) {
						err = db.SQL().QueryRowContext(ctx, rawInsert, k, "S").Scan(&u.ID, &u.Email, &u.Name)
						if errors.Is(err, sql.ErrNoRows) {
							err = db.SQL().QueryRowContext(ctx, sel, k).Scan(&u.ID, &u.Email, &u.Name)
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
					tRaw.Add(int64(time.Since(s)))
					s = time.Now()
					k = sc.name + strconv.FormatInt(oursSeq.Add(1)/64, 10)
					if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": k}, racefree.Values{"name": "S"}, sc.opts); err != nil {
						b.Error(err)
						return
					}
					tOurs.Add(int64(time.Since(s)))
					n.Add(1)
				}
			})
			b.ReportMetric(float64(tRaw.Load())/float64(n.Load()), "raw-ns/op")
			b.ReportMetric(float64(tOurs.Load())/float64(n.Load()), "racefree-ns/op")
			b.ReportMetric(float64(tRaw.Load())/float64(tOurs.Load()), "x-raw")
		})
	}

	const batch = 1000
	b.Run("Batch1000", func(b *testing.B) {
		items := make([]racefree.Item, batch)
		pair(b, func() {
			for range batch {
				_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": newKey()}, racefree.Values{"name": "B"}, racefree.Options{})
				must(err)
			}
		}, func() {
			for i := range items {
				items[i] = racefree.Item{Lookup: racefree.Values{"email": newKey()}, Defaults: racefree.Values{"name": "B"}}
			}
			_, err := racefree.GetOrCreateMany[gocUser](ctx, db, table, items, racefree.Options{})
			must(err)
		})
	})
}
