package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
)

// openExampleDB opens a SQLite database in a temporary directory.
func openExampleDB(ctx context.Context) (*racefree.DB, func(), error) {
	dir, err := os.MkdirTemp("", "racefree-example")
	if err != nil {
		return nil, nil, err
	}
	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }, nil
}

// A transfer between two accounts: RunInTx retries it when the engine
// reports a serialization failure, a deadlock or SQLITE_BUSY, and returns
// any other error, here the body's own.
func ExampleRunInTx() {
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
	errInsufficient := errors.New("insufficient funds")
	transfer := func(from, to, amount int) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			// The balance is checked by the database, in the same statement
			// that debits it: no read-then-write race.
			res, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?", amount, from, amount)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(errInsufficient, err)
			}
			_, err = tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, to)
			return err
		})
	}
	fmt.Println(transfer(1, 2, 70))
	fmt.Println(transfer(1, 2, 70))
	var a, b int
	if err := db.SQL().QueryRowContext(ctx, "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2)").Scan(&a, &b); err != nil {
		fmt.Println(err)
	}
	fmt.Println(a, b)
	// Output:
	// <nil>
	// insufficient funds
	// 30 70
}

// Errors from the database match the racefree classes with errors.Is,
// whatever the engine.
func ExampleDB_Classify() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE users (email TEXT PRIMARY KEY)`); err != nil {
		fmt.Println(err)
		return
	}
	insert := func() error {
		_, err := db.SQL().ExecContext(ctx, "INSERT INTO users (email) VALUES (?)", "ada@example.com")
		return err
	}
	_ = insert()
	err = db.Classify(insert())
	fmt.Println(errors.Is(err, racefree.ErrUniqueViolation), db.Classify(err).Columns)
	// Output:
	// true [users.email]
}

// A nested RunInTx is a savepoint: its failure undoes only its own work.
func ExampleRunInTx_nested() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE log (msg TEXT)`); err != nil {
		fmt.Println(err)
		return
	}
	err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO log VALUES ('kept')"); err != nil {
			return err
		}
		inner := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO log VALUES ('undone')"); err != nil {
				return err
			}
			return sql.ErrNoRows // any error rolls back to the savepoint
		})
		fmt.Println("inner:", inner)
		return nil
	})
	fmt.Println("outer:", err)
	var n int
	_ = db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM log").Scan(&n)
	fmt.Println("rows:", n)
	// Output:
	// inner: sql: no rows in result set
	// outer: <nil>
	// rows: 1
}
