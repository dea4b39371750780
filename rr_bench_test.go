package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkRepeatableRead measures get-or-create inside the caller's
// REPEATABLE READ transaction: racefree's GetOrCreate in RunInTx against
// the Django-style code in the same kind of transaction (SELECT; on a
// miss SAVEPOINT, INSERT, RELEASE; on a unique violation ROLLBACK TO
// SAVEPOINT and SELECT again — which under a snapshot may find nothing:
// an error reaches the caller). 32 parallel callers, over 1,000 keys and
// over one hot key, with fresh keys every 64 calls so that miss storms and
// lost races recur; many short rounds alternate the two
// (alternateParallel). It reports ns/op of each, x-django =
// django ÷ racefree time (above 1: racefree is faster) and the errors the
// Django-style code surfaced (racefree surfaces none: any would fail the
// benchmark).
//
// Run: go test -run '^$' -bench BenchmarkRepeatableRead .
func BenchmarkRepeatableRead(b *testing.B) {
	for _, e := range testdb.Engines() {
		if e.Name == "sqlite" {
			continue // one isolation level, one writer
		}
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(16)
			db.SQL().SetMaxIdleConns(16)
			ctx := context.Background()
			table := testdb.CreateTable(b, db, "rr_bench", gocUsersDDL)
			ph := db.Dialect().Placeholder
			sel := "SELECT id, email, name FROM " + table + " WHERE email = " + ph(1)
			ins := "INSERT INTO " + table + " (email, name) VALUES (" + ph(1) + ", " + ph(2) + ")"
			rr := &sql.TxOptions{Isolation: sql.LevelRepeatableRead}
			var djangoErrors atomic.Int64
			django := func(key string) error {
				tx, err := db.SQL().BeginTx(ctx, rr)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				var u gocUser
				err = tx.QueryRowContext(ctx, sel, key).Scan(&u.ID, &u.Email, &u.Name)
				if errors.Is(err, sql.ErrNoRows) {
					if _, err = tx.ExecContext(ctx, "SAVEPOINT dj"); err == nil {
						if _, err = tx.ExecContext(ctx, ins, key, "n"); err == nil {
							_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT dj")
						} else if errors.Is(db.Classify(err), racefree.ErrUniqueViolation) {
							if _, err = tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT dj"); err == nil {
								err = tx.QueryRowContext(ctx, sel, key).Scan(&u.ID, &u.Email, &u.Name)
							}
						}
					}
				}
				if err != nil {
					djangoErrors.Add(1) // "duplicate key, then not found", or a serialization failure
					return nil
				}
				return tx.Commit()
			}
			ours := func(key string) error {
				return racefree.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context, tx *racefree.Tx) error {
					_, _, err := racefree.GetOrCreate[gocUser](ctx, tx, table, racefree.Values{"email": key}, racefree.Values{"name": "n"}, racefree.Options{})
					return err
				})
			}
			for _, spread := range []int{1000, 1} {
				b.Run("Keys"+strconv.Itoa(spread), func(b *testing.B) {
					var calls atomic.Int64
					// Keys of this run only: with -count, a later run must
					// not find the rows of an earlier one (all hits).
					prefix := testdb.UniqueName("r")
					key := func() string {
						n := calls.Add(1)
						k := (n * 2654435761) % int64(spread) // scattered over the keys
						return prefix + "g" + strconv.FormatInt(n/64, 10) + "-" + strconv.FormatInt(k, 10)
					}
					sides := []benchSide{
						{"django", func() error { return django(key()) }},
						{"racefree", func() error { return ours(key()) }},
					}
					// One unmeasured round per side first: the pools fill,
					// the statements get prepared on every connection, and
					// the table's first pages are written, which would
					// otherwise be charged to whichever side runs first.
					for _, side := range sides {
						var wg sync.WaitGroup
						for range 32 {
							wg.Go(func() {
								for range 8 {
									_ = side.op()
								}
							})
						}
						wg.Wait()
					}
					djangoErrors.Store(0)
					per := alternateParallel(b, 32, sides) // 32 callers on two cores
					b.ReportMetric(per[0]/per[1], "x-django")
					b.ReportMetric(float64(djangoErrors.Load()), "django-errors")
				})
			}
		})
	}
}
