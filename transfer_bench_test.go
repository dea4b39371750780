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
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkTransfer measures racefree.Transfer against the hand-written
// transfer it replaces, per engine, between 10 (hot) and 1000 accounts,
// with 16 goroutines on a pool of 16 connections:
//
//	hand-written  BEGIN; the two conditional UPDATEs in ascending id order
//	              (the debit: balance = balance - ? WHERE id = ? AND
//	              balance - ? >= ?, rolled back when it matches nothing);
//	              COMMIT. No retry loop: its errors are counted (raw-errors).
//	Transfer      racefree.Transfer on the *DB: one statement, or, behind
//	              a row busy with another transfer of the process, a
//	              transaction shared with the others queued there, where
//	              the engine shares commits (transfer_share.go)
//	Transfer-alone  the same with TransferOptions.Alone: one statement,
//	              its own commit, always
//	Transfer-in-tx  racefree.RunInTx + racefree.Transfer: the caller's
//	              transaction, one statement in it
//	fallback      racefree.Transfer on a dialect without a Transferer:
//	              racefree's own transaction (lock both rows, debit, credit)
//
// The two sides run in alternating segments (pairParallel), so that the
// two meet the same load; the benchmark reports raw-ns/op, racefree-ns/op
// (wall time per transfer with 16 goroutines) and x-raw = hand-written
// time ÷ racefree time (above 1: racefree is faster). Balances are large enough that no transfer is declined. The
// sum of the balances is checked at the end.
//
// Run: go test -run '^$' -bench BenchmarkTransfer .
func BenchmarkTransfer(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(16)
			db.SQL().SetMaxIdleConns(16)
			fallback, err := fallbackDB(context.Background(), db)
			if err != nil {
				b.Fatal(err)
			}
			for _, accounts := range []int{10, 1000} {
				b.Run("accounts="+strconv.Itoa(accounts), func(b *testing.B) {
					bal := mustBalances(b, db, accounts, 1_000_000_000_000)
					hand := handWrittenTransfer(db, bal)
					for _, v := range []struct {
						name string
						op   func(ctx context.Context, from, to, amount int64) error
					}{
						{"Transfer", func(ctx context.Context, from, to, amount int64) error {
							return transfer(ctx, db, bal, from, to, amount, racefree.TransferOptions{})
						}},
						{"Transfer-alone", func(ctx context.Context, from, to, amount int64) error {
							return transfer(ctx, db, bal, from, to, amount, racefree.TransferOptions{Alone: true})
						}},
						{"Transfer-in-tx", func(ctx context.Context, from, to, amount int64) error {
							return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
								return transfer(ctx, tx, bal, from, to, amount, racefree.TransferOptions{})
							})
						}},
						{"fallback", func(ctx context.Context, from, to, amount int64) error {
							return transfer(ctx, fallback, bal, from, to, amount, racefree.TransferOptions{})
						}},
					} {
						b.Run(v.name, func(b *testing.B) {
							pairParallel(b, accounts, hand, v.op)
						})
					}
					sum := testdb.QueryInt(b, db, "SELECT SUM(balance) FROM "+bal.Table)
					if want := int64(accounts) * 1_000_000_000_000; sum != want {
						b.Fatalf("sum of balances %d, want %d", sum, want)
					}
				})
			}
		})
	}
}

// handWrittenTransfer is the transfer as a careful programmer writes it
// without racefree: one transaction, the two conditional UPDATEs in
// ascending id order so that A→B and B→A cannot deadlock, no retries.
func handWrittenTransfer(db *racefree.DB, bal target) func(ctx context.Context, from, to, amount int64) error {
	ph := db.Dialect().Placeholder
	debit := "UPDATE " + bal.Table + " SET balance = balance - " + ph(1) + " WHERE id = " + ph(2) + " AND balance - " + ph(3) + " >= " + ph(4)
	credit := "UPDATE " + bal.Table + " SET balance = balance + " + ph(1) + " WHERE id = " + ph(2)
	return func(ctx context.Context, from, to, amount int64) error {
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		doDebit := func() error {
			res, err := tx.ExecContext(ctx, debit, amount, from, amount, 0)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(err, racefree.ErrBelowFloor)
			}
			return nil
		}
		doCredit := func() error {
			_, err := tx.ExecContext(ctx, credit, amount, to)
			return err
		}
		first, second := doDebit, doCredit
		if from > to {
			first, second = doCredit, doDebit
		}
		if err := first(); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		if err := second(); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	}
}

// benchGoroutines is how many goroutines run each side at once.
const benchGoroutines = 16

// pairParallel runs b.N transfers of each side, in alternating segments
// (hand-written first, then racefree, then racefree first …) of
// benchGoroutines goroutines each, and reports each side's wall time per
// transfer and their ratio. Alternating segments put the two sides under
// the same load (a busy machine's drift hits both) without making either
// wait for the other's locks. Errors of the hand-written side are counted
// (raw-errors/op); any error of racefree's fails the benchmark.
func pairParallel(b *testing.B, accounts int, raw, ours func(ctx context.Context, from, to, amount int64) error) {
	b.Helper()
	b.ReportAllocs()
	const segments = 10
	var tRaw, tOurs time.Duration
	var rawErrs atomic.Int64
	var seq atomic.Uint64
	segment := func(side func(ctx context.Context, from, to, amount int64) error, n int, errs *atomic.Int64) time.Duration {
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		start := time.Now()
		for range benchGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seq.Add(1), uint64(time.Now().UnixNano())))
				ctx := context.Background()
				for left.Add(-1) >= 0 {
					from := r.Int64N(int64(accounts)) + 1
					to := r.Int64N(int64(accounts)-1) + 1
					if to >= from {
						to++
					}
					if err := side(ctx, from, to, r.Int64N(100)+1); err != nil {
						if errs == nil {
							b.Error(fmt.Errorf("racefree: %w", err))
							return
						}
						errs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	// Unmeasured: open the pool's connections and prepare the statements
	// of both sides, which would otherwise fall on the first segment.
	segment(raw, 4*benchGoroutines, &rawErrs)
	segment(ours, 4*benchGoroutines, nil)
	rawErrs.Store(0)
	for i := range segments {
		n := b.N / segments
		if i < b.N%segments {
			n++
		}
		if n == 0 {
			continue
		}
		if i%2 == 0 {
			tRaw += segment(raw, n, &rawErrs)
			tOurs += segment(ours, n, nil)
		} else {
			tOurs += segment(ours, n, nil)
			tRaw += segment(raw, n, &rawErrs)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(tRaw.Nanoseconds())/n, "raw-ns/op")
	b.ReportMetric(float64(tOurs.Nanoseconds())/n, "racefree-ns/op")
	b.ReportMetric(float64(tRaw)/float64(tOurs), "x-raw")
	b.ReportMetric(float64(rawErrs.Load())/n, "raw-errors/op")
}
