package sqlxexample_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/sqlitedialect"
)

// Tag is read by sqlx and by racefree alike: both use db tags.
type Tag struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Slug string `db:"slug"`
	Uses int64  `db:"uses"`
}

const schema = `CREATE TABLE tags (
	id   INTEGER PRIMARY KEY,
	name TEXT    NOT NULL UNIQUE,
	slug TEXT    NOT NULL,
	uses INTEGER NOT NULL DEFAULT 0
)`

// openSQLx opens SQLite with sqlx as an application would, with the DSN
// racefree recommends for SQLite (WAL, busy timeout, write transactions
// IMMEDIATE), and wraps the same pool with racefree.
func openSQLx(ctx context.Context) (*sqlx.DB, *racefree.DB, func()) {
	dir, err := os.MkdirTemp("", "sqlx-example")
	if err != nil {
		panic(err)
	}
	dsn, _, err := sqlitedialect.DriverDSN(filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	xdb := sqlx.MustOpen("sqlite", dsn)
	db, err := racefree.New(ctx, xdb.DB, sqlitedialect.New()) // the one line: *sqlx.DB → *racefree.DB
	if err != nil {
		panic(err)
	}
	xdb.MustExecContext(ctx, schema)
	return xdb, db, func() { db.Close(); xdb.Close(); os.RemoveAll(dir) }
}

// On the pool: racefree's get-or-create beside sqlx's queries.
func Example() {
	ctx := context.Background()
	xdb, db, done := openSQLx(ctx)
	defer done()

	tag, created, err := racefree.GetOrCreate[Tag](ctx, db, "tags",
		racefree.Values{"name": "go"}, racefree.Values{"slug": "golang"}, racefree.Options{})
	fmt.Println(tag.ID, tag.Name, tag.Slug, created, err)

	var viaSQLx Tag
	err = xdb.GetContext(ctx, &viaSQLx, "SELECT id, name, slug, uses FROM tags WHERE name = ?", "go")
	fmt.Println(viaSQLx == tag, err)
	// Output:
	// 1 go golang true <nil>
	// true <nil>
}

// A *sqlx.Tx of yours: racefree joins it and leaves the commit to you.
func Example_sqlxTx() {
	ctx := context.Background()
	xdb, db, done := openSQLx(ctx)
	defer done()

	xtx := xdb.MustBeginTx(ctx, nil)
	defer xtx.Rollback()
	tx := db.WrapTx(xtx.Tx, nil) // the one line: *sqlx.Tx → *racefree.Tx

	tag, created, err := racefree.GetOrCreate[Tag](ctx, tx, "tags",
		racefree.Values{"name": "sql"}, racefree.Values{"slug": "sql"}, racefree.Options{})
	fmt.Println(tag.Name, created, err)
	xtx.MustExecContext(ctx, "UPDATE tags SET uses = uses + 1 WHERE id = ?", tag.ID)
	if err := xtx.Commit(); err != nil {
		panic(err)
	}
	var uses int64
	err = xdb.GetContext(ctx, &uses, "SELECT uses FROM tags WHERE name = ?", "sql")
	fmt.Println(uses, err)
	// Output:
	// sql true <nil>
	// 1 <nil>
}

// racefree's transaction with retries, and sqlx's methods inside it.
func Example_runInTx() {
	ctx := context.Background()
	xdb, db, done := openSQLx(ctx)
	defer done()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		xtx := &sqlx.Tx{Tx: tx.SQL(), Mapper: xdb.Mapper} // sqlx's view of racefree's transaction
		tag, _, err := racefree.GetOrCreate[Tag](ctx, tx, "tags",
			racefree.Values{"name": "go"}, racefree.Values{"slug": "golang"}, racefree.Options{})
		if err != nil {
			return err
		}
		_, err = xtx.NamedExecContext(ctx, "UPDATE tags SET uses = uses + 1 WHERE id = :id", tag)
		return err
	})
	var tags []Tag
	if err == nil {
		err = xdb.SelectContext(ctx, &tags, "SELECT * FROM tags ORDER BY id")
	}
	fmt.Println(tags, err)
	// Output:
	// [{1 go golang 1}] <nil>
}
