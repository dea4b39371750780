package sqlcexample_test

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/examples/sqlc/ledgerdb"
)

//go:embed schema.sql
var schema string

var errInsufficient = errors.New("insufficient funds")

// openLedger opens a SQLite ledger with two accounts of 100.
func openLedger(ctx context.Context) (*racefree.DB, func()) {
	dir, err := os.MkdirTemp("", "sqlc-example")
	if err != nil {
		panic(err)
	}
	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "ledger.db"))
	if err != nil {
		panic(err)
	}
	if _, err := db.SQL().ExecContext(ctx, schema); err != nil {
		panic(err)
	}
	q := ledgerdb.New(db.SQL()) // outside a transaction, sqlc's queries run on the pool
	for _, a := range []ledgerdb.CreateAccountParams{{ID: 1, Owner: "alice", Balance: 100}, {ID: 2, Owner: "bob", Balance: 100}} {
		if err := q.CreateAccount(ctx, a); err != nil {
			panic(err)
		}
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// Transfers written with sqlc's queries, run by racefree.RunInTx: both
// accounts locked in ascending order (no deadlock between A→B and B→A),
// the balance checked inside the transaction, retries on conflicts.
func Example() {
	ctx := context.Background()
	db, done := openLedger(ctx)
	defer done()
	queries := ledgerdb.New(db.SQL())

	transfer := func(from, to, amount int64) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			q := queries.WithTx(tx.SQL()) // the one line: sqlc's queries in racefree's transaction
			if _, err := racefree.LockRows(ctx, tx, "accounts", "id", []int64{from, to}, racefree.RowLockOptions{}); err != nil {
				return err
			}
			src, err := q.GetAccount(ctx, from)
			if err != nil {
				return err
			}
			if src.Balance < amount {
				return errInsufficient
			}
			if err := q.AddToBalance(ctx, ledgerdb.AddToBalanceParams{Balance: -amount, ID: from}); err != nil {
				return err
			}
			return q.AddToBalance(ctx, ledgerdb.AddToBalanceParams{Balance: amount, ID: to})
		})
	}

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			from, to := int64(1), int64(2)
			if i%2 == 1 {
				from, to = 2, 1
			}
			if err := transfer(from, to, 7); err != nil && !errors.Is(err, errInsufficient) {
				fmt.Println("transfer failed:", err)
			}
		})
	}
	wg.Wait()
	total, err := queries.TotalBalance(ctx)
	fmt.Println("total:", total, err)
	// Output:
	// total: 200 <nil>
}

// A transaction you begin yourself: sqlc's queries and racefree's verbs
// share it (racefree.DB.WrapTx never commits or rolls it back).
func Example_ownTransaction() {
	ctx := context.Background()
	db, done := openLedger(ctx)
	defer done()

	sqlTx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		panic(err)
	}
	defer sqlTx.Rollback()
	q := ledgerdb.New(sqlTx)
	tx := db.WrapTx(sqlTx, nil) // the one line: racefree joins your transaction

	type account struct {
		ID      int64  `db:"id"`
		Owner   string `db:"owner"`
		Balance int64  `db:"balance"`
	}
	carol, created, err := racefree.GetOrCreate[account](ctx, tx, "accounts",
		racefree.Values{"id": 3}, racefree.Values{"owner": "carol", "balance": 0}, racefree.Options{})
	fmt.Println(carol.Owner, created, err)
	if err := q.AddToBalance(ctx, ledgerdb.AddToBalanceParams{Balance: 50, ID: carol.ID}); err != nil {
		panic(err)
	}
	if err := sqlTx.Commit(); err != nil {
		panic(err)
	}
	got, err := ledgerdb.New(db.SQL()).GetAccount(ctx, 3)
	fmt.Println(got.Owner, got.Balance, err)
	// Output:
	// carol true <nil>
	// carol 50 <nil>
}
