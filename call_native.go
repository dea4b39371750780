package racefree

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// Native reads: on a *DB over database/sql whose dialect is a
// dialect.RowReader (PostgreSQL over pgx), the get-or-create family's
// reads on the pool borrow a connection from database/sql and let the
// dialect read the row on it directly, skipping database/sql's per-query
// work — the few microseconds that kept a hit below a raw QueryRowContext.
// Only reads go this way: when the dialect cannot place a value exactly
// as database/sql would, it says so after the read and the read runs
// again through database/sql, which a write could not.

// nativeReads is a DB's state for native reads.
type nativeReads struct {
	reader dialect.RowReader // nil: the DB does not read natively
	// foreign is set when the pool's connections turned out not to be
	// the dialect's driver's (a wrapped driver): no read goes natively.
	foreign atomic.Bool
	// viaSQL holds the query texts whose values needed database/sql:
	// query → struct{}. Only ever written when a read first needs it.
	viaSQL sync.Map
}

// initNativeReads enables native reads on a DB made over sqlDB.
func (db *DB) initNativeReads() {
	if r, ok := db.d.(dialect.RowReader); ok && db.sql != nil {
		db.native.reader = r
	}
}

// readQueryRow runs a read on q: natively where it can (see above), else
// as queryRow does.
func (c *call) readQueryRow(ctx context.Context, q dialect.Querier, query string, args []any) session.Row {
	n := &c.db.native
	if n.reader != nil && c.h.onPool() && q == c.h.q && !n.foreign.Load() {
		if _, slow := n.viaSQL.Load(query); !slow {
			return nativeRow{ctx: ctx, c: c, q: q, query: query, args: args}
		}
	}
	return c.queryRow(ctx, q, query, args)
}

// nativeRow is a read that runs when it is scanned, like *sql.Row.
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
	if cerr := conn.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if h := testHookNativeRead.Load(); h != nil {
		(*h)(err)
	}
	switch {
	case errors.Is(err, dialect.ErrForeignConn):
		db.native.foreign.Store(true)
	case errors.Is(err, dialect.ErrNotReadNatively):
		db.native.viaSQL.Store(r.query, struct{}{})
	case errors.Is(err, driver.ErrBadConn):
		// The connection was dead before the query went out: database/sql
		// retries such a read on another connection, and so does this.
	default:
		return err
	}
	return r.c.queryRow(ctx, r.q, r.query, r.args).Scan(dest...)
}

// testHookNativeRead, set only by tests, sees the outcome of each native
// read before the fallback to database/sql.
var testHookNativeRead atomic.Pointer[func(error)]

var _ session.Row = nativeRow{}
