package racefree_test

import (
	"context"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// BenchmarkRunInTx compares a one-statement transaction through RunInTx
// with the same transaction written by hand on database/sql, in one run, so
// that the ratio shows what the runner costs.
func BenchmarkRunInTx(b *testing.B) {
	for _, e := range testdb.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			db := e.Open(b)
			tbl := testdb.CreateTable(b, db, "bench", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
			testdb.Exec(b, db, "INSERT INTO "+tbl+" (id, n) VALUES (1, 0)")
			update := "UPDATE " + tbl + " SET n = n + 1 WHERE id = 1"
			ctx := context.Background()
			b.Run("raw", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tx, err := db.SQL().BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tx.ExecContext(ctx, update); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("RunInTx", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
						_, err := tx.ExecContext(ctx, update)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
