package racefree_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/racefree/racefree"
)

// Move money between two accounts without overdrawing: one statement that
// locks both rows in key order, checks the balance and moves the amount,
// both rows or neither.
func ExampleTransfer() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 0)`); err != nil {
		fmt.Println(err)
		return
	}

	err = racefree.Transfer(ctx, db, "accounts", "balance", 1, 2, 70, racefree.TransferOptions{})
	fmt.Println("70 from 1 to 2:", err)

	err = racefree.Transfer(ctx, db, "accounts", "balance", 1, 2, 70, racefree.TransferOptions{})
	fmt.Println("70 more:", errors.Is(err, racefree.ErrBelowFloor))

	err = racefree.Transfer(ctx, db, "accounts", "balance", 1, 3, 10, racefree.TransferOptions{})
	fmt.Println("to account 3:", errors.Is(err, racefree.ErrNoRow))

	var a, b int
	if err := db.SQL().QueryRowContext(ctx, "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2)").Scan(&a, &b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a, b)
	// Output:
	// 70 from 1 to 2: <nil>
	// 70 more: true
	// to account 3: true
	// 30 70
}

// A transfer inside your own transaction, beside the other writes it must
// commit with: here a ledger entry. A declined transfer changes nothing,
// and the transaction goes on.
func ExampleTransfer_inTransaction() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER NOT NULL);
		CREATE TABLE moves (sku_from TEXT, sku_to TEXT, qty INTEGER);
		INSERT INTO stock VALUES ('warehouse', 12), ('store', 0)`); err != nil {
		fmt.Println(err)
		return
	}
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		// Keep 2 in the warehouse.
		if err := racefree.Transfer(ctx, tx, "stock", "qty", "warehouse", "store", 10, racefree.TransferOptions{KeyColumn: "sku", Floor: 2}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO moves VALUES ('warehouse', 'store', 10)")
		return err
	})
	fmt.Println(err)
	var qty int
	if err := db.SQL().QueryRowContext(ctx, "SELECT qty FROM stock WHERE sku = 'store'").Scan(&qty); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(qty)
	// Output:
	// <nil>
	// 10
}
