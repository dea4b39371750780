package racefree_test

import (
	"context"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkLocks measures what each lock costs uncontended, in one run per
// engine, against the same transaction without a lock (tx_only: RunInTx
// with one primary-key SELECT) and the raw SELECT outside a transaction.
func BenchmarkLocks(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			db := testdb.Open(b, e.DSN(b))
			table := testdb.CreateTable(b, db, "lockbench", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
			testdb.Exec(b, db, "INSERT INTO "+table+" (id, n) VALUES (1, 0), (2, 0)")
			ctx := context.Background()
			sel := "SELECT n FROM " + table + " WHERE id = 1"
			inTx := func(b *testing.B, lock func(ctx context.Context, tx *racefree.Tx) error) {
				b.ReportAllocs()
				for b.Loop() {
					err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
						if err := lock(ctx, tx); err != nil {
							return err
						}
						var n int
						return tx.QueryRowContext(ctx, sel).Scan(&n)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("raw_select", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var n int
					if err := db.SQL().QueryRowContext(ctx, sel).Scan(&n); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("tx_only", func(b *testing.B) {
				inTx(b, func(context.Context, *racefree.Tx) error { return nil })
			})
			b.Run("lock_named", func(b *testing.B) {
				inTx(b, func(ctx context.Context, tx *racefree.Tx) error {
					return racefree.LockNamed(ctx, tx, "bench", racefree.LockOptions{})
				})
			})
			b.Run("lock_named_timeout", func(b *testing.B) {
				inTx(b, func(ctx context.Context, tx *racefree.Tx) error {
					return racefree.LockNamed(ctx, tx, "bench", racefree.LockOptions{Wait: racefree.Wait{Timeout: 5e9}})
				})
			})
			b.Run("lock_rows_2", func(b *testing.B) {
				inTx(b, func(ctx context.Context, tx *racefree.Tx) error {
					_, err := racefree.LockRows(ctx, tx, table, "id", []int64{2, 1}, racefree.RowLockOptions{})
					return err
				})
			})
			b.Run("lock_table_write", func(b *testing.B) {
				inTx(b, func(ctx context.Context, tx *racefree.Tx) error {
					return racefree.LockTable(ctx, tx, table, racefree.LockTableWrite, racefree.LockOptions{})
				})
			})
			b.Run("session_lock_unlock", func(b *testing.B) {
				if e.Name == "sqlite" {
					b.Skip("no session locks on SQLite")
				}
				b.ReportAllocs()
				for b.Loop() {
					l, err := racefree.AcquireSessionLock(ctx, db, "bench", racefree.LockOptions{})
					if err != nil {
						b.Fatal(err)
					}
					if err := l.Release(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("lease_acquire_release", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					l, err := racefree.AcquireLease(ctx, db, "bench", racefree.LeaseOptions{})
					if err != nil {
						b.Fatal(err)
					}
					if err := l.Release(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
