package pgxrf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestTransfer_Pgx: racefree.Transfer on a pgx pool, in one statement, and
// inside racefree's transaction over pgx.
func TestTransfer_Pgx(t *testing.T) {
	_, check, db, _ := open(t, 4)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_transfer", "id BIGINT PRIMARY KEY, balance NUMERIC(12,2) NOT NULL CHECK (balance >= 0)")
	testdb.Exec(t, check, "INSERT INTO "+table+" (id, balance) VALUES (1, 100), (2, 0)")
	must(t, racefree.Transfer(ctx, db, table, "balance", 1, 2, "60.50", racefree.TransferOptions{}))
	if err := racefree.Transfer(ctx, db, table, "balance", 1, 2, 40, racefree.TransferOptions{}); !errors.Is(err, racefree.ErrBelowFloor) {
		t.Fatalf("39.50 left, 40 asked: got %v, want ErrBelowFloor", err)
	}
	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.Transfer(ctx, tx, table, "balance", 2, 1, "0.50", racefree.TransferOptions{})
	}))
	if got := testdb.QueryInt(t, check, "SELECT CAST(balance * 100 AS BIGINT) FROM "+table+" WHERE id = 1"); got != 4000 {
		t.Fatalf("balance of 1 = %d hundredths, want 4000", got)
	}
}
