package racefree

import (
	"context"
	"database/sql"
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
//
// The same holds on a connection racefree knows the *sql.Conn of: a *Conn,
// and a transaction RunInTx began (on a *Conn or on one it took from the
// pool). There the statement runs on that pinned connection, inside the
// transaction as database/sql would run it; a transaction the caller began
// (WrapTx) lends no connection and reads through database/sql.

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
	if n.reader != nil && q == c.h.q && !n.foreign.Load() && (c.h.onPool() || c.h.pinned != nil) {
		// The call keeps the row, which is scanned before the call's next
		// statement: no allocation per statement.
		c.native = nativeRow{ctx: ctx, c: c, q: q, pinned: c.h.pinned, query: query, args: args}
		return &c.native
	}
	return c.queryRow(ctx, q, query, args)
}

// nativeRow is a statement that runs when it is scanned, like *sql.Row.
type nativeRow struct {
	ctx    context.Context
	c      *call
	q      dialect.Querier
	pinned *sql.Conn // the connection q runs on; nil: q is the pool
	query  string
	args   []any
}

func (r *nativeRow) Scan(dest ...any) error {
	var err error
	if r.pinned != nil {
		err = r.readPinned(dest)
	} else {
		err = r.readPooled(dest)
	}
	if h := testHookNativeRead.Load(); h != nil {
		(*h)(err)
	}
	switch {
	case errors.Is(err, dialect.ErrForeignConn):
		r.c.db.native.foreign.Store(true)
	case errors.Is(err, dialect.ErrNotReadNatively):
		// Declined before sending, for this query only.
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, errPinnedNotSent):
		// The connection was dead before the query went out: on the pool,
		// database/sql retries such a query on another connection, and so
		// does this; on a pinned connection it returns its own error.
	case errors.Is(err, sql.ErrConnDone):
		// A pinned connection already given back (a *Tx used after its
		// RunInTx returned): database/sql's error names the real cause.
	default:
		return err
	}
	// Nothing was sent: database/sql runs the query.
	return r.c.queryRow(r.ctx, r.q, r.query, r.args).Scan(dest...)
}

// readPooled reads on a connection borrowed from the pool for this query.
func (r *nativeRow) readPooled(dest []any) error {
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
	return err
}

// errPinnedNotSent stands, inside Raw on a pinned connection, for
// driver.ErrBadConn (a connection dead or busy before the statement was
// sent): given that, Raw closes the *sql.Conn, which waits for the
// transaction open on it to end — forever, since the transaction ends in
// this goroutine.
var errPinnedNotSent = errors.New("racefree: native read: connection refused the statement before it was sent")

// readPinned reads on the pinned connection, inside whatever transaction
// is open on it. Raw must not see driver.ErrBadConn (see errPinnedNotSent),
// nor a panic, which it turns into one: a panic in the reader is raised
// again once Raw has returned.
func (r *nativeRow) readPinned(dest []any) error {
	db := r.c.db
	var panicked any
	err := r.pinned.Raw(func(dc any) (err error) {
		defer func() {
			if p := recover(); p != nil {
				panicked, err = p, errPinnedNotSent
			}
		}()
		err = db.native.reader.ReadRow(r.ctx, dc, r.query, r.args, dest)
		if errors.Is(err, driver.ErrBadConn) {
			err = errPinnedNotSent
		}
		return err
	})
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// testHookNativeRead, set only by tests, sees the outcome of each native
// query before any fallback to database/sql.
var testHookNativeRead atomic.Pointer[func(error)]

var _ session.Row = (*nativeRow)(nil)
