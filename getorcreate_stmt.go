package racefree

import (
	"context"
	"database/sql"

	"github.com/racefree/racefree/dialect"
)

// Prepared statements for SQLite. PostgreSQL's driver caches prepared
// statements per connection by their text, and MySQL's interpolates
// parameters client-side; SQLite's driver parses every statement it is
// given, which is a third of the cost of a hit. racefree's statements come
// from a small set of shapes (see sqlCache), so on a *DB it keeps one
// *sql.Stmt per statement text, which database/sql prepares once per
// pooled connection.

// queryRow runs query on q: through a prepared statement on SQLite when
// q is the pool, else on q itself.
func (o *op) queryRow(ctx context.Context, q dialect.Querier, query string, args []any) *sql.Row {
	if o.d.Name() == "sqlite" && q == dialect.Querier(o.db.sql) {
		if s := o.stmt(ctx, query); s != nil {
			return s.QueryRowContext(ctx, args...)
		}
	}
	return q.QueryRowContext(ctx, query, args...)
}

// stmt returns the pool's prepared statement for query, preparing it the
// first time; nil if it cannot be prepared (the error will show when the
// query runs unprepared). DB.stmts holds them, one per statement shape (a
// bounded set), for as long as the DB lives.
func (o *op) stmt(ctx context.Context, query string) *sql.Stmt {
	if s, ok := o.db.stmts.Load(query); ok {
		return s.(*sql.Stmt)
	}
	s, err := o.db.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := o.db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt)
	}
	return s
}
