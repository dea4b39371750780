package racefree

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// Native reads: on a *DB over database/sql whose dialect is a
// dialect.RowReader (PostgreSQL over pgx), the get-or-create family's
// statements on the pool that return one row — a hit's SELECT, a miss's
// INSERT … RETURNING — borrow a connection from database/sql and let the
// dialect run them on it directly, skipping database/sql's per-query work:
// the few microseconds that kept a hit below a raw QueryRowContext. The
// dialect hands back database/sql's own result (see dialect.RowReader).

// nativeReads is a DB's state for native reads.
type nativeReads struct {
	reader dialect.RowReader // nil: the DB does not read natively
	// foreign is set when the pool's connections turned out not to be
	// the dialect's driver's (a wrapped driver): no read goes natively.
	foreign atomic.Bool
}

// initNativeReads enables native reads on a DB made over sqlDB.
func (db *DB) initNativeReads() {
	if r, ok := db.d.(dialect.RowReader); ok && db.sql != nil {
		db.native.reader = r
	}
}

// nativeQueryRow runs a statement that returns one row on q: natively
// where it can (see above), else as queryRow does.
func (c *call) nativeQueryRow(ctx context.Context, q dialect.Querier, query string, args []any) session.Row {
	n := &c.db.native
	if n.reader != nil && c.h.onPool() && q == c.h.q && !n.foreign.Load() {
		return nativeRow{ctx: ctx, c: c, q: q, query: query, args: args}
	}
	return c.queryRow(ctx, q, query, args)
}

// nativeRow is a statement that runs when it is scanned, like *sql.Row.
type nativeRow struct {
	ctx   context.Context
	c     *call
	q     dialect.Querier
	query string
	args  []any
}

func (r nativeRow) Scan(dest ...any) error {
	ctx, db := r.ctx, r.c.db
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		return db.native.reader.ReadRow(ctx, dc, r.query, r.args, dest)
	})
	// Back to the pool; Close fails only on a Conn already closed.
	_ = conn.Close()
	if h := testHookNativeRead.Load(); h != nil {
		(*h)(err)
	}
	switch {
	case errors.Is(err, dialect.ErrForeignConn):
		db.native.foreign.Store(true)
	case errors.Is(err, dialect.ErrNotReadNatively):
		// Declined before sending, for this query only.
	case errors.Is(err, driver.ErrBadConn):
		// The connection was dead before the query went out: database/sql
		// retries such a query on another connection, and so does this.
	default:
		return err
	}
	// Nothing was sent: database/sql runs the query.
	return r.c.queryRow(ctx, r.q, r.query, r.args).Scan(dest...)
}

// testHookNativeRead, set only by tests, sees the outcome of each native
// query before any fallback to database/sql.
var testHookNativeRead atomic.Pointer[func(error)]

var _ session.Row = nativeRow{}
