package racefree_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/session"
)

// Open a database by DSN. The dialect package, imported for its side
// effect (import _ "github.com/racefree/racefree/dialect/sqlitedialect"),
// registers the scheme; Open connects and detects the server behind it.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "racefree-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println(db.Dialect().Name())
	// Output: sqlite
}

// Wrap a *sql.DB the program already has. For SQLite, open it with the
// DSN sqlitedialect.DriverDSN makes, so that it behaves as Open's would
// (WAL, a busy timeout, IMMEDIATE write transactions). Closing the DB
// leaves the *sql.DB open: it is still the program's.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "racefree-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	dsn, _, err := sqlitedialect.DriverDSN(filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	sqlDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlDB.Close()

	db, err := racefree.New(ctx, sqlDB, sqlitedialect.New())
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := sqlDB.ExecContext(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)"); err != nil {
		fmt.Println(err)
		return
	}
	_, created, err := racefree.GetOrCreate[racefree.Values](ctx, db, "users", racefree.Values{"email": "ada@example.com"}, nil, racefree.Options{})
	fmt.Println(created, err)
	fmt.Println(db.Close(), sqlDB.PingContext(ctx))
	// Output:
	// true <nil>
	// <nil> <nil>
}

// An adapter package makes a DB over its client library's pool with
// NewSession; programs call the adapter's constructor (pgxrf.New, say).
// Here the pool is database/sql's own, through session.SQLPool, to show
// the contract: such a DB has no *sql.DB, and runs everything through
// the session.
func ExampleNewSession() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "racefree-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	sqlDB, err := sqlitedialect.Open(filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlDB.Close()

	db, err := racefree.NewSession(ctx, session.SQLPool{DB: sqlDB}, sqlitedialect.New())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := db.Session().Exec(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)"); err != nil {
		fmt.Println(err)
		return
	}
	_, created, err := racefree.GetOrCreate[racefree.Values](ctx, db, "users", racefree.Values{"email": "ada@example.com"}, nil, racefree.Options{})
	fmt.Println(created, err, db.SQL() == nil)
	// Output: true <nil> true
}

// Close a DB that Open made when the program is done with it: it closes the
// *sql.DB too.
func ExampleDB_Close() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	sqlDB := db.SQL()
	fmt.Println(db.Close())
	fmt.Println(sqlDB.PingContext(ctx))
	// Output:
	// <nil>
	// sql: database is closed
}

// Statements of your own run on the underlying *sql.DB; racefree's
// operations share its pool.
func ExampleDB_SQL() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
	defer cleanup()

	if _, err := db.SQL().ExecContext(ctx, "INSERT INTO users (email) VALUES (?), (?)", "ada@example.com", "alan@example.com"); err != nil {
		fmt.Println(err)
		return
	}
	var n int
	err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	fmt.Println(n, err)
	// Output: 2 <nil>
}

// Session is the pool as racefree runs statements on it: code written
// against it works whether the DB was opened with database/sql or made
// over another client library (pgxrf), where SQL returns nil.
func ExampleDB_Session() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
	defer cleanup()

	countQueued := func(ctx context.Context, pool session.Pool) (n int, err error) {
		err = pool.QueryRow(ctx, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'").Scan(&n)
		return n, err
	}
	if _, err := db.Session().Exec(ctx, "INSERT INTO jobs (state) VALUES ('queued'), ('done'), ('queued')"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(countQueued(ctx, db.Session()))
	// Output: 2 <nil>
}

// The dialect quotes identifiers and numbers placeholders as the engine
// wants, for statements built at run time.
func ExampleDB_Dialect() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE "order" (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)`)
	defer cleanup()

	d := db.Dialect()
	table, err := d.Quote("order") // a reserved word
	if err != nil {
		fmt.Println(err)
		return
	}
	query := "INSERT INTO " + table + " (total) VALUES (" + d.Placeholder(1) + ")"
	fmt.Println(d.Name(), query)
	_, err = db.SQL().ExecContext(ctx, query, 1250)
	fmt.Println(err)
	// Output:
	// sqlite INSERT INTO "order" (total) VALUES (?)
	// <nil>
}

// A pinned connection keeps session state between operations: here a
// temporary table of imported addresses, which only the connection that
// made it can see.
func ExampleDB_Conn() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
	defer cleanup()

	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	if _, err := conn.SQL().ExecContext(ctx, `CREATE TEMP TABLE imported (email TEXT);
		INSERT INTO imported VALUES ('ada@example.com'), ('alan@example.com'), ('ada@example.com')`); err != nil {
		fmt.Println(err)
		return
	}
	var created int
	err = racefree.RunInTx(ctx, conn, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		created = 0 // the body may run again
		rows, err := tx.QueryContext(ctx, "SELECT email FROM imported")
		if err != nil {
			return err
		}
		var emails []string
		for rows.Next() {
			var email string
			if err := rows.Scan(&email); err != nil {
				rows.Close()
				return err
			}
			emails = append(emails, email)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, email := range emails {
			_, ok, err := racefree.GetOrCreate[racefree.Values](ctx, tx, "users", racefree.Values{"email": email}, nil, racefree.Options{})
			if err != nil {
				return err
			}
			if ok {
				created++
			}
		}
		return nil
	})
	fmt.Println(created, err)
	// Output: 2 <nil>
}

// A transaction you began yourself: racefree operations join it through
// WrapTx and never commit or roll it back. Pass the options you began it
// with, so that racefree knows its isolation level.
func ExampleDB_WrapTx() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
		CREATE TABLE audit (user_id INTEGER, what TEXT)`)
	defer cleanup()

	opts := &sql.TxOptions{}
	sqlTx, err := db.SQL().BeginTx(ctx, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlTx.Rollback()
	user, created, err := racefree.GetOrCreate[racefree.Values](ctx, db.WrapTx(sqlTx, opts), "users",
		racefree.Values{"email": "ada@example.com"}, nil, racefree.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if created {
		if _, err := sqlTx.ExecContext(ctx, "INSERT INTO audit VALUES (?, 'signed up')", user["id"]); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(created, sqlTx.Commit())
	// Output: true <nil>
}

// WrapConn adopts a connection taken from the pool with database/sql, so
// that racefree operations run on that session.
func ExampleDB_WrapConn() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
	defer cleanup()

	sqlConn, err := db.SQL().Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlConn.Close()
	conn := db.WrapConn(sqlConn)
	for _, name := range []string{"go", "sql", "go"} {
		_, created, err := racefree.GetOrCreate[racefree.Values](ctx, conn, "tags", racefree.Values{"name": name}, nil, racefree.Options{})
		fmt.Println(name, created, err)
	}
	// Output:
	// go true <nil>
	// sql true <nil>
	// go false <nil>
}

// An adapter package wraps a transaction of its client library with
// WrapSessionTx (pgxrf.WrapTx does for pgx). database/sql's own adapter,
// session.SQLTx, shows the contract.
func ExampleDB_WrapSessionTx() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
	defer cleanup()

	opts := &sql.TxOptions{}
	sqlTx, err := db.SQL().BeginTx(ctx, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlTx.Rollback()
	tx := db.WrapSessionTx(session.SQLTx{Tx: sqlTx}, opts)
	_, created, err := racefree.GetOrCreate[racefree.Values](ctx, tx, "tags", racefree.Values{"name": "go"}, nil, racefree.Options{})
	fmt.Println(created, err, sqlTx.Commit())
	// Output: true <nil> <nil>
}

// An adapter package wraps a connection of its client library with
// WrapSessionConn; here database/sql's own, session.SQLConn.
func ExampleDB_WrapSessionConn() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
	defer cleanup()

	sqlConn, err := db.SQL().Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sqlConn.Close()
	conn := db.WrapSessionConn(session.SQLConn{Conn: sqlConn})
	created, err := racefree.Link(ctx, conn, "tags", racefree.Values{"name": "go"}, racefree.Options{})
	fmt.Println(created, err)
	// Output: true <nil>
}

// racefree reads a table's columns and unique indexes once per DB. After a
// migration changes a table while the program runs, ForgetSchema makes the
// next call read them again.
func ExampleDB_ForgetSchema() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
	defer cleanup()

	type user struct {
		Email string `db:"email"`
		Plan  string `db:"plan"`
	}
	if _, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, "users", racefree.Values{"email": "ada@example.com"}, nil, racefree.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	// The migration, while the program runs.
	if _, err := db.SQL().ExecContext(ctx, "ALTER TABLE users ADD COLUMN plan TEXT NOT NULL DEFAULT 'free'"); err != nil {
		fmt.Println(err)
		return
	}
	db.ForgetSchema("users")
	u, created, err := racefree.GetOrCreate[user](ctx, db, "users", racefree.Values{"email": "alan@example.com"}, racefree.Values{"plan": "pro"}, racefree.Options{})
	fmt.Printf("%+v %v %v\n", u, created, err)
	// Output: {Email:alan@example.com Plan:pro} true <nil>
}

// Close returns a pinned connection to the pool; a transaction run on it
// must be over by then.
func ExampleConn_Close() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(db.SQL().Stats().InUse)
	fmt.Println(conn.Close())
	fmt.Println(db.SQL().Stats().InUse)
	// Output:
	// 1
	// <nil>
	// 0
}

// A Conn is an Executor, so it knows its engine as a *DB and a *Tx do:
// code that takes an Executor can ask.
func ExampleConn_Dialect() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	engine := func(ex racefree.Executor) string { return ex.Dialect().Name() }
	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println(engine(db), engine(conn))
	// Output: sqlite sqlite
}

// SQL returns the *sql.Conn under a pinned connection, for statements of
// your own on the same session: here a per-connection setting.
func ExampleConn_SQL() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	if _, err := conn.SQL().ExecContext(ctx, "PRAGMA cache_size = -4096"); err != nil {
		fmt.Println(err)
		return
	}
	var kib int
	err = conn.SQL().QueryRowContext(ctx, "PRAGMA cache_size").Scan(&kib)
	fmt.Println(kib, err)
	// Output: -4096 <nil>
}

// Session returns the connection as racefree runs statements on it,
// whatever client library is behind it.
func ExampleConn_Session() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, "")
	defer cleanup()

	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	var one int
	err = conn.Session().QueryRow(ctx, "SELECT 1").Scan(&one)
	fmt.Println(one, err)
	// Output: 1 <nil>
}
