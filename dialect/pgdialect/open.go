package pgdialect

import (
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/racefree/racefree/dialect"
)

func init() {
	dialect.Register("postgres", openDialect)
	dialect.Register("postgresql", openDialect)
}

// Open opens a PostgreSQL database through pgx's database/sql driver. dsn is
// a URL (postgres://user@host:5432/db?sslmode=disable) or a keyword/value
// string, as pgx.ParseConfig accepts. It does not connect; the first use does.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgdialect: parse DSN: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}

func openDialect(dsn string) (*sql.DB, dialect.Dialect, error) {
	db, err := Open(dsn)
	if err != nil {
		return nil, nil, err
	}
	return db, New(), nil
}
