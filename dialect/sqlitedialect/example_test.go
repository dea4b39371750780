package sqlitedialect_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/sqlitedialect"
)

// Open a *sql.DB for concurrent use and hand it to racefree.New with the
// dialect; racefree.Open("sqlite:…") does both in one call.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlitedialect-example")
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

	db, err := racefree.New(ctx, sqlDB, sqlitedialect.New())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println(db.Dialect().Name())
	// Output: sqlite
}

// Open sets up a file database for many connections: WAL, a busy timeout,
// foreign keys, and write transactions that take the write lock at BEGIN.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlitedialect-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := sqlitedialect.Open("sqlite:" + filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	var mode string
	var timeout, foreignKeys int
	err = db.QueryRowContext(ctx, "SELECT * FROM pragma_journal_mode, pragma_busy_timeout, pragma_foreign_keys").Scan(&mode, &timeout, &foreignKeys)
	fmt.Println(mode, timeout, foreignKeys, err)
	// Output: wal 5000 1 <nil>
}

// DriverDSN is the DSN racefree opens with modernc.org/sqlite: open your
// own *sql.DB with it to get the same settings. A pragma in the DSN
// replaces racefree's default for it.
func ExampleDriverDSN() {
	dsn, memory, err := sqlitedialect.DriverDSN("sqlite:app.db?_pragma=busy_timeout(250)")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(dsn, memory)
	_, memory, _ = sqlitedialect.DriverDSN(":memory:")
	fmt.Println(memory)

	db, err := sql.Open("sqlite", dsn) // connects on first use
	fmt.Println(err, db.Close())
	// Output:
	// file:app.db?_pragma=busy_timeout%28250%29&_pragma=journal_mode%28WAL%29&_pragma=foreign_keys%281%29&_pragma=synchronous%28NORMAL%29&_txlock=immediate false
	// true
	// <nil> <nil>
}
