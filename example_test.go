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
	return openExampleDBAt(ctx, "", "")
}

// openExampleDBAt is openExampleDB with DSN query parameters (params, ""
// for none), a schema to create (SQL, "" for none) and DB options.
func openExampleDBAt(ctx context.Context, params, schema string, opts ...racefree.DBOption) (*racefree.DB, func(), error) {
	dir, err := os.MkdirTemp("", "racefree-example")
	if err != nil {
		return nil, nil, err
	}
	dsn := "sqlite:" + filepath.Join(dir, "app.db")
	if params != "" {
		dsn += "?" + params
	}
	db, err := racefree.Open(ctx, dsn, opts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cleanup := func() { db.Close(); os.RemoveAll(dir) }
	if schema != "" {
		if _, err := db.SQL().ExecContext(ctx, schema); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return db, cleanup, nil
}

// mustExampleDB opens a SQLite database in a temporary directory with
// schema created in it, and panics if it cannot: the setup is no part of
// what an example shows. Call the cleanup function when done.
func mustExampleDB(ctx context.Context, schema string, opts ...racefree.DBOption) (*racefree.DB, func()) {
	db, cleanup, err := openExampleDBAt(ctx, "", schema, opts...)
	if err != nil {
		panic(err)
	}
	return db, cleanup
}

// mustBusyExampleDB is mustExampleDB with a busy timeout of 10 ms instead
// of sqlitedialect.DefaultBusyTimeout, for the examples of a write lock
// held elsewhere: a writer that finds it taken fails with ErrBusy at once.
func mustBusyExampleDB(ctx context.Context, schema string, opts ...racefree.DBOption) (*racefree.DB, func()) {
	db, cleanup, err := openExampleDBAt(ctx, "_pragma=busy_timeout(10)", schema, opts...)
	if err != nil {
		panic(err)
	}
	return db, cleanup
}

// holdWriteLock plays another process in the middle of a write: it begins
// a write transaction on db, which takes SQLite's write lock, and returns
// the function that rolls it back.
func holdWriteLock(ctx context.Context, db *racefree.DB) (release func()) {
	tx, err := db.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the DSN says so
	if err != nil {
		panic(err)
	}
	return func() { tx.Rollback() }
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
