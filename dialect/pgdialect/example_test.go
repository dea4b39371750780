package pgdialect_test

import (
	"context"
	"fmt"
	"log"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/pgdialect"
)

// These examples need a PostgreSQL server, so they are compiled, not run.

// Wrap a *sql.DB opened with pgx's database/sql driver, naming its dialect;
// racefree.New reads the server's version and adapts to it (PostgreSQL's
// release, CockroachDB).
func ExampleNew() {
	ctx := context.Background()
	sqlDB, err := pgdialect.Open("postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	db, err := racefree.New(ctx, sqlDB, pgdialect.New())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(db.Dialect().Server()) // "PostgreSQL 17.6", say
}

// Open takes a URL or a keyword/value DSN, as pgx does, and does not
// connect: the first statement does.
func ExampleOpen() {
	ctx := context.Background()
	sqlDB, err := pgdialect.Open("host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	if err := sqlDB.PingContext(ctx); err != nil {
		log.Fatal(err)
	}
}
