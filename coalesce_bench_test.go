package racefree_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkCoalesce measures coalescing, on by default, under 64 parallel
// callers of hits: over 1,000 keys (where callers rarely share, so what it
// costs shows) and on one hot key (where they always do), each against
// the same calls with Options.NoCoalesce and against a raw primary-key
// SELECT, in many short rounds that alternate them so that load on the
// machine hits them alike (alternateParallel). It reports ns/op of each
// and x-raw = raw ÷ racefree and x-nocoalesce = nocoalesce ÷ racefree
// (above 1: racefree is faster). Over 1,000 keys a fourth side runs the
// NoCoalesce calls again, and x-control = that side ÷ nocoalesce: two
// runs of identical code, whose spread over runs is the benchmark's
// noise, against which x-nocoalesce is read.
//
// Run: go test -run '^$' -bench BenchmarkCoalesce .
func BenchmarkCoalesce(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(16)
			db.SQL().SetMaxIdleConns(16)
			ctx := context.Background()
			table := testdb.CreateTable(b, db, "coal_bench", gocUsersDDL)
			const keys = 1000
			ids := make([]int64, keys)
			for k := range keys {
				u, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "k" + strconv.Itoa(k)}, racefree.Values{"name": "n"}, racefree.Options{})
				if err != nil {
					b.Fatal(err)
				}
				ids[k] = u.ID
			}
			pk := "SELECT id, email, name FROM " + table + " WHERE id = " + db.Dialect().Placeholder(1)
			for _, spread := range []int{keys, 1} {
				name := map[int]string{keys: "Keys1000", 1: "HotKey"}[spread]
				b.Run(name, func(b *testing.B) {
					var next atomic.Int64
					key := func() int { return int(next.Add(1)) % spread }
					shared := racefree.CoalescedCalls(db)
					sides := []benchSide{
						{"raw", func() error {
							var u gocUser
							return db.SQL().QueryRowContext(ctx, pk, ids[key()]).Scan(&u.ID, &u.Email, &u.Name)
						}},
						{"racefree", func() error {
							_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "k" + strconv.Itoa(key())}, racefree.Values{"name": "n"}, racefree.Options{})
							return err
						}},
						{"nocoalesce", func() error {
							_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "k" + strconv.Itoa(key())}, racefree.Values{"name": "n"}, racefree.Options{NoCoalesce: true})
							return err
						}},
					}
					if spread == keys {
						sides = append(sides, benchSide{"control", sides[2].op})
					}
					per := alternateParallel(b, 64, sides)
					b.ReportMetric(per[0]/per[1], "x-raw")
					b.ReportMetric(per[2]/per[1], "x-nocoalesce")
					if spread == keys {
						b.ReportMetric(per[3]/per[2], "x-control")
					}
					// The share of racefree's calls answered by another's trip.
					b.ReportMetric(float64(racefree.CoalescedCalls(db)-shared)/float64(b.N), "shared/op")
				})
			}
		})
	}
}
