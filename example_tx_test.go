package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/session"
)

// DB returns the database a transaction belongs to: a helper that is handed
// only the *Tx can still classify its own statements' errors.
func ExampleTx_DB() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE users (email TEXT PRIMARY KEY)")
	defer cleanup()

	errTaken := errors.New("email taken")
	signUp := func(ctx context.Context, tx *racefree.Tx, email string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO users VALUES (?)", email)
		if errors.Is(tx.DB().Classify(err), racefree.ErrUniqueViolation) {
			return errTaken
		}
		return err
	}
	for range 2 {
		err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			return signUp(ctx, tx, "ada@example.com")
		})
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// email taken
}

// Dialect returns the engine's dialect, for SQL that differs between
// engines.
func ExampleTx_Dialect() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL)")
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		now := "CURRENT_TIMESTAMP"
		if tx.Dialect().Name() == "mysql" {
			now = "CURRENT_TIMESTAMP(6)"
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO events (at) VALUES ("+now+")")
		return err
	})
	fmt.Println(err)
	// Output: <nil>
}

// Exec runs a statement through the session contract, so a helper written
// against it works on a database/sql transaction and on pgx's (pgxrf)
// alike.
func ExampleTx_Exec() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		res, err := tx.Exec(ctx, "INSERT INTO jobs (state) VALUES ('queued'), ('queued')")
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fmt.Println("inserted", n)
		return err
	})
	fmt.Println(err)
	// Output:
	// inserted 2
	// <nil>
}

// ExecContext is *sql.Tx's method of the same name, for code written
// against database/sql.
func ExampleTx_ExecContext() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
		INSERT INTO accounts VALUES (1, 100)`)
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + ? WHERE id = ?", 25, 1)
		return err
	})
	var balance int
	if err == nil {
		err = db.SQL().QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance)
	}
	fmt.Println(balance, err)
	// Output: 125 <nil>
}

// Isolation tells a helper what level the transaction it was handed runs
// at; racefree's own transactions know it. SQLite has one level,
// SERIALIZABLE, and accepts it by name.
func ExampleTx_Isolation() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	for _, opts := range []racefree.TxOptions{{}, {Isolation: sql.LevelSerializable}} {
		err := racefree.RunInTx(ctx, db, opts, func(ctx context.Context, tx *racefree.Tx) error {
			level, known := tx.Isolation()
			fmt.Println(level, known)
			return nil
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// Default true
	// Serializable true
}

// A statement prepared once in the transaction and run for every row.
func ExampleTx_PrepareContext() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (name TEXT PRIMARY KEY)")
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO tags VALUES (?)")
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, name := range []string{"go", "sql", "sqlite"} {
			if _, err := stmt.ExecContext(ctx, name); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	if err == nil {
		err = db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM tags").Scan(&n)
	}
	fmt.Println(n, err)
	// Output: 3 <nil>
}

// Query reads rows through the session contract, whatever client library
// is behind the transaction.
func ExampleTx_Query() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL);
		INSERT INTO jobs (state) VALUES ('queued'), ('done'), ('queued')`)
	defer cleanup()

	var ids []int64
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		ids = ids[:0] // the body may run again
		rows, err := tx.Query(ctx, "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	fmt.Println(ids, err)
	// Output: [1 3] <nil>
}

// QueryContext is *sql.Tx's method of the same name.
func ExampleTx_QueryContext() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
		INSERT INTO users (email) VALUES ('ada@example.com'), ('alan@example.com')`)
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{ReadOnly: true}, func(ctx context.Context, tx *racefree.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT email FROM users ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var email string
			if err := rows.Scan(&email); err != nil {
				return err
			}
			fmt.Println(email)
		}
		return rows.Err()
	})
	fmt.Println(err)
	// Output:
	// ada@example.com
	// alan@example.com
	// <nil>
}

// QueryRow reads one row through the session contract; a missing row is
// session.ErrNoRows, whatever client library is behind the transaction.
func ExampleTx_QueryRow() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)`)
	defer cleanup()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		var email string
		err := tx.QueryRow(ctx, "SELECT email FROM users WHERE id = ?", 7).Scan(&email)
		fmt.Println(errors.Is(err, session.ErrNoRows))
		return nil
	})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

// QueryRowContext is *sql.Tx's method of the same name: read, then write
// what was read, in one transaction.
func ExampleTx_QueryRowContext() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
		INSERT INTO counters VALUES ('visits', 41)`)
	defer cleanup()

	var n int
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT n FROM counters WHERE name = 'visits'").Scan(&n); err != nil {
			return err
		}
		n++
		_, err := tx.ExecContext(ctx, "UPDATE counters SET n = ? WHERE name = 'visits'", n)
		return err
	})
	fmt.Println(n, err)
	// Output: 42 <nil>
}

// SQL hands the *sql.Tx to code that takes one, such as sqlc's
// Queries.WithTx; the runner still commits it.
func ExampleTx_SQL() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (name TEXT PRIMARY KEY)")
	defer cleanup()

	insertTag := func(ctx context.Context, tx *sql.Tx, name string) error { // generated code, say
		_, err := tx.ExecContext(ctx, "INSERT INTO tags VALUES (?)", name)
		return err
	}
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return insertTag(ctx, tx.SQL(), "go")
	})
	fmt.Println(err)
	// Output: <nil>
}

// Session returns the transaction as racefree runs statements on it: pass
// it to helpers written against the session contract.
func ExampleTx_Session() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (name TEXT PRIMARY KEY)")
	defer cleanup()

	addTag := func(ctx context.Context, q session.Querier, name string) error {
		_, err := q.Exec(ctx, "INSERT INTO tags VALUES (?)", name)
		return err
	}
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return addTag(ctx, tx.Session(), "go")
	})
	fmt.Println(err)
	// Output: <nil>
}
