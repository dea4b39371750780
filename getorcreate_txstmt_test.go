package racefree_test

import (
	"context"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// In a transaction RunInTx began on MySQL/MariaDB, a get-or-create's read
// runs the pool's prepared statement bound to the transaction: the server
// counts one COM_STMT_EXECUTE for it in the transaction's session. A
// transaction of the caller's (WrapTx) runs the text, as before.
func TestGetOrCreate_InTxRunsThePoolsPreparedStatement(t *testing.T) {
	e, _ := testdb.Get("mysql")
	e.Require(t)
	db := testdb.Open(t, e.DSN(t))
	ctx := context.Background()
	table := testdb.CreateTable(t, db, "txstmt", "id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'n', n BIGINT")
	testdb.Exec(t, db, "INSERT INTO "+table+" (id) VALUES (1)")
	key := racefree.Values{"id": int64(1)}
	// A call on the pool prepares the statement.
	_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, db, table, key, nil, racefree.Options{})
	must(t, err)

	executes := func(tx *racefree.Tx) int64 {
		t.Helper()
		var name string
		var n int64
		must(t, tx.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_stmt_execute'").Scan(&name, &n))
		return n
	}
	hitIn := func(tx *racefree.Tx) (delta int64) {
		before := executes(tx)
		_, _, err := racefree.GetOrCreate[nativeTxRow](ctx, tx, table, key, nil, racefree.Options{})
		must(t, err)
		return executes(tx) - before
	}

	must(t, racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if d := hitIn(tx); d != 1 {
			t.Errorf("RunInTx: %d prepared executions for the hit, want 1", d)
		}
		return nil
	}))

	stx, err := db.SQL().BeginTx(ctx, nil)
	must(t, err)
	defer stx.Rollback()
	if d := hitIn(db.WrapTx(stx, nil)); d != 0 {
		t.Errorf("WrapTx: %d prepared executions for the hit, want 0 (the text runs)", d)
	}
}
