package ledger_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/examples/bank/ledger"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkTransfer compares, in one run and per engine, the ways to make
// the transfer correct, against the raw primary-key SELECT:
//
//	raw_select       SELECT balance FROM accounts WHERE id = ?
//	transfer         ledger.Transfer without an idempotency key: racefree.Transfer, one statement
//	transfer_idem    ledger.Transfer with an idempotency key: a transaction of the INSERT and racefree.Transfer
//	serializable     read both balances, write both, SERIALIZABLE, retried by RunInTx
//	argument_order   FOR UPDATE on the debited account, then the credited one, retried by RunInTx
//
// 16 goroutines (b.SetParallelism(8) on 2 cores) transfer between 10
// accounts in both directions. deadlocks/op and retries/op count what the
// server raised; every variant keeps the total, checked at the end.
func BenchmarkTransfer(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			db.SQL().SetMaxOpenConns(16)
			l := mustLedger(b, db)
			ph := db.Dialect().Placeholder
			var seq atomic.Int64
			run := func(b *testing.B, op func(ctx context.Context, r *rand.Rand, retries, deadlocks *atomic.Int64) error) {
				var retries, deadlocks atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(uint64(seq.Add(1)), uint64(time.Now().UnixNano())))
					ctx := context.Background()
					for pb.Next() {
						if err := op(ctx, r, &retries, &deadlocks); err != nil && !errors.Is(err, ledger.ErrInsufficientFunds) {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
				b.ReportMetric(float64(deadlocks.Load())/float64(b.N), "deadlocks/op")
				if sum, minBal, _, err := l.Totals(context.Background()); err != nil || sum != accounts*initialBalance || minBal < 0 {
					b.Fatalf("invariant broken: total %d, min %d, %v", sum, minBal, err)
				}
			}
			countRetries := func(retries, deadlocks *atomic.Int64) racefree.RetryPolicy {
				return onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
					retries.Add(1)
					if errors.Is(err, racefree.ErrDeadlock) {
						deadlocks.Add(1)
					}
				})
			}

			b.Run("raw_select", func(b *testing.B) {
				run(b, func(ctx context.Context, r *rand.Rand, _, _ *atomic.Int64) error {
					var bal int64
					return db.SQL().QueryRowContext(ctx, "SELECT balance FROM "+l.Accounts+" WHERE id = "+ph(1), r.Int64N(accounts)+1).Scan(&bal)
				})
			})
			b.Run("transfer", func(b *testing.B) {
				run(b, func(ctx context.Context, r *rand.Rand, retries, deadlocks *atomic.Int64) error {
					lr := *l
					lr.TxOptions.Retry = countRetries(retries, deadlocks)
					from, to, amount := pair(r)
					_, err := lr.Transfer(ctx, "", from, to, amount)
					return err
				})
			})
			b.Run("transfer_idem", func(b *testing.B) {
				run(b, func(ctx context.Context, r *rand.Rand, retries, deadlocks *atomic.Int64) error {
					lr := *l
					lr.TxOptions.Retry = countRetries(retries, deadlocks)
					from, to, amount := pair(r)
					_, err := lr.Transfer(ctx, fmt.Sprintf("bench-%d-%d", seq.Add(1), r.Int64()), from, to, amount)
					return err
				})
			})
			b.Run("serializable", func(b *testing.B) {
				run(b, func(ctx context.Context, r *rand.Rand, retries, deadlocks *atomic.Int64) error {
					from, to, amount := pair(r)
					opts := racefree.TxOptions{Isolation: sql.LevelSerializable, Retry: countRetries(retries, deadlocks)}
					return racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
						var fb, tb int64
						q := "SELECT balance FROM " + l.Accounts + " WHERE id = " + ph(1)
						if err := tx.QueryRowContext(ctx, q, from).Scan(&fb); err != nil {
							return err
						}
						if err := tx.QueryRowContext(ctx, q, to).Scan(&tb); err != nil {
							return err
						}
						if fb < amount {
							return ledger.ErrInsufficientFunds
						}
						u := "UPDATE " + l.Accounts + " SET balance = " + ph(1) + " WHERE id = " + ph(2)
						if _, err := tx.ExecContext(ctx, u, fb-amount, from); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, u, tb+amount, to)
						return err
					})
				})
			})
			b.Run("argument_order", func(b *testing.B) {
				if e.Name == "sqlite" {
					b.Skip("SQLite has no row locks: no lock order")
				}
				run(b, func(ctx context.Context, r *rand.Rand, retries, deadlocks *atomic.Int64) error {
					from, to, amount := pair(r)
					opts := racefree.TxOptions{Retry: countRetries(retries, deadlocks)}
					return racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
						for _, id := range []int64{from, to} {
							var got int64
							if err := tx.QueryRowContext(ctx, "SELECT id FROM "+l.Accounts+" WHERE id = "+ph(1)+" FOR UPDATE", id).Scan(&got); err != nil {
								return err
							}
						}
						res, err := tx.ExecContext(ctx, "UPDATE "+l.Accounts+" SET balance = balance - "+ph(1)+" WHERE id = "+ph(2)+" AND balance >= "+ph(3), amount, from, amount)
						if err != nil {
							return err
						}
						if n, _ := res.RowsAffected(); n == 0 {
							return ledger.ErrInsufficientFunds
						}
						_, err = tx.ExecContext(ctx, "UPDATE "+l.Accounts+" SET balance = balance + "+ph(1)+" WHERE id = "+ph(2), amount, to)
						return err
					})
				})
			})
		})
	}
}
