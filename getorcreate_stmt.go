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

// querier returns where to run query: a prepared statement on SQLite when
// the executor is the pool, else the executor itself.
func (o *op) querier(ctx context.Context, q dialect.Querier, query string) rowQuerier {
	if o.d.Name() != "sqlite" || q != dialect.Querier(o.db.sql) {
		return plainQuerier{q, query}
	}
	// DB.stmts holds them, one per statement shape (a bounded set), for
	// as long as the DB lives.
	if s, ok := o.db.stmts.Load(query); ok {
		return s.(*sql.Stmt)
	}
	s, err := o.db.sql.PrepareContext(ctx, query)
	if err != nil {
		return plainQuerier{q, query} // the error will show when it runs
	}
	if prev, loaded := o.db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt)
	}
	return s
}

// rowQuerier is a *sql.Stmt or a query bound to its executor.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
}

type plainQuerier struct {
	q     dialect.Querier
	query string
}

func (p plainQuerier) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return p.q.QueryRowContext(ctx, p.query, args...)
}
