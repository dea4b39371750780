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

// Several transfers in one transaction, for rows so hot that the commit is
// what each transfer waits for: one commit for the batch. LockRows first
// locks every row the batch touches, in ascending key order, so that two
// batches (or a batch and a single Transfer) cannot deadlock; each
// Transfer then finds its rows locked already. A declined transfer moves
// nothing and the batch goes on; the batch commits, or not, as one.
func ExampleTransfer_batch() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 0), (3, 0)`); err != nil {
		fmt.Println(err)
		return
	}
	type move struct{ from, to, amount int64 }
	batch := []move{{1, 2, 60}, {2, 3, 50}, {1, 3, 60}, {3, 1, 10}}
	declined := make([]bool, len(batch))
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		// A retried transaction starts again from here.
		clear(declined)
		var keys []int64
		for _, m := range batch {
			keys = append(keys, m.from, m.to)
		}
		if _, err := racefree.LockRows(ctx, tx, "accounts", "id", keys, racefree.RowLockOptions{}); err != nil {
			return err
		}
		for i, m := range batch {
			err := racefree.Transfer(ctx, tx, "accounts", "balance", m.from, m.to, m.amount, racefree.TransferOptions{})
			switch {
			case errors.Is(err, racefree.ErrBelowFloor):
				declined[i] = true
			case err != nil:
				return err
			}
		}
		return nil
	})
	fmt.Println(err, declined)
	var a, b, c int
	if err := db.SQL().QueryRowContext(ctx, "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2), (SELECT balance FROM accounts WHERE id = 3)").Scan(&a, &b, &c); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a, b, c)
	// Output:
	// <nil> [false false true false]
	// 50 10 40
}
