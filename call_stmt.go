package racefree

import (
	"context"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// Prepared statements for the hit path. racefree's statements come from a
// small set of shapes (one per plan, see plan.go), so on a *DB it keeps
// one *sql.Stmt per statement text, which database/sql prepares once per
// pooled connection. On MySQL/MariaDB each such statement holds a slot of
// the server's max_prepared_stmt_count (16382 by default) per connection
// that ran it, until the DB is closed.

// queryRow runs query on q: through a prepared statement when the pool
// gains by it (see prepares) and q is the pool or a transaction RunInTx
// began on it, else on q itself.
func (c *call) queryRow(ctx context.Context, q dialect.Querier, query string, args []any) session.Row {
	if q == c.h.q && c.prepares() {
		switch tx := c.h.tx; {
		case c.h.onPool():
			if s := c.stmt(ctx, query); s != nil {
				return s.QueryRow(ctx, args...)
			}
		case tx != nil && tx.ownsCommit && tx.db == c.db:
			// A transaction RunInTx began on this pool runs the pool's
			// statement, prepared once per connection.
			if s := tx.poolStmt(ctx, query); s != nil {
				return s.QueryRow(ctx, args...)
			}
		}
	}
	return q.QueryRow(ctx, query, args...)
}

// prepares reports whether statements on the pool go through prepared
// statements: when the pool can prepare them (session.Preparer) and the
// engine gains by it. pgx already keeps a prepared statement per
// connection and query text, and a *sql.Stmt on top of it only adds work
// (measured: 0.95-0.97 of the plain query's speed), so pgx's pools do not
// offer Preparer. The MySQL driver interpolates arguments into the text,
// which the server then parses on every call; a server-side prepared
// statement skips that (measured: 1.11-1.16 times the speed of the
// interpolated query on MariaDB 10.11). SQLite's driver parses every
// statement it is given.
func (c *call) prepares() bool {
	_, ok := c.db.pool.(session.Preparer)
	return ok && c.d.Features().Has(dialect.PrepareOnPool)
}

// stmt returns the pool's prepared statement for query, preparing it the
// first time; nil if it cannot be prepared (the error will show when the
// query runs unprepared). DB.stmts holds them, one per statement shape (a
// bounded set), for as long as the DB lives.
func (c *call) stmt(ctx context.Context, query string) session.Stmt {
	if s, ok := c.db.stmts.Load(query); ok {
		return s.(session.Stmt)
	}
	p, ok := c.db.pool.(session.Preparer)
	if !ok {
		return nil
	}
	s, err := p.Prepare(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := c.db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(session.Stmt)
	}
	return s
}
