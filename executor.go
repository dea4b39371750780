package racefree

import (
	"context"
	"database/sql"
	"errors"

	"github.com/racefree/racefree/dialect"
)

// Executor is where a racefree operation runs: a [*DB] (the pool), a [*Tx]
// (a transaction: racefree's own, or yours wrapped with [DB.WrapTx]) or a
// [*Conn] (one pinned connection). Operations respect what they are given:
// on a *Tx they never commit or roll back the transaction, and they guard
// their own statements with savepoints where a failed statement would
// otherwise poison it.
type Executor interface {
	// Dialect returns the engine's dialect.
	Dialect() dialect.Dialect
	// handle is unexported so that only this package's types implement
	// Executor.
	handle() handle
}

// handle is what an operation needs from an Executor.
type handle struct {
	db   *DB
	q    dialect.Querier // *sql.DB, *sql.Conn or *sql.Tx
	tx   *Tx             // non-nil inside a transaction
	conn *sql.Conn       // non-nil for a *Conn
}

var errNilExecutor = errors.New("racefree: nil executor (a *DB, *Tx or *Conn is needed)")

// handleOf returns ex's handle, or an error naming the problem when ex is
// nil or a nil pointer.
func handleOf(ex Executor) (handle, error) {
	if ex == nil {
		return handle{}, errNilExecutor
	}
	h := ex.handle()
	if h.db == nil || h.q == nil {
		return handle{}, errNilExecutor
	}
	return h, nil
}

var (
	_ Executor = (*DB)(nil)
	_ Executor = (*Tx)(nil)
	_ Executor = (*Conn)(nil)
)

func (db *DB) handle() handle {
	if db == nil || db.sql == nil {
		return handle{}
	}
	return handle{db: db, q: db.sql}
}

// Tx is a transaction racefree operations can run in. [RunInTx] creates
// one and commits or rolls it back; [DB.WrapTx] adopts yours, which racefree
// then never commits or rolls back. Like *sql.Tx, a Tx is for one goroutine
// at a time.
type Tx struct {
	db    *DB
	tx    *sql.Tx
	opts  sql.TxOptions
	known bool // opts.Isolation is what the transaction really runs at
	spSeq int  // savepoint names issued so far; see savepoint
}

// WrapTx adopts a transaction you began on this database. Pass the options
// you gave BeginTx, or nil if you do not know them; racefree uses the
// isolation level to choose how to recover from a lost race, and when it is
// unknown it assumes the strictest case that still lets it work.
func (db *DB) WrapTx(tx *sql.Tx, opts *sql.TxOptions) *Tx {
	t := &Tx{db: db, tx: tx}
	if opts != nil {
		t.opts, t.known = *opts, true
	}
	return t
}

// Dialect returns the engine's dialect.
func (tx *Tx) Dialect() dialect.Dialect { return tx.db.d }

// SQL returns the underlying *sql.Tx. Do not commit or roll it back inside
// RunInTx: the runner does that.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// DB returns the database the transaction belongs to.
func (tx *Tx) DB() *DB { return tx.db }

// Isolation returns the isolation level the transaction was begun with, and
// whether it is known (false for a wrapped transaction without options).
// sql.LevelDefault means the server's default.
func (tx *Tx) Isolation() (sql.IsolationLevel, bool) { return tx.opts.Isolation, tx.known }

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, query, args...)
}

func (tx *Tx) handle() handle {
	if tx == nil || tx.db == nil || tx.tx == nil {
		return handle{}
	}
	return handle{db: tx.db, q: tx.tx, tx: tx}
}

// Conn is one connection pinned from the pool, for work that must stay on
// one session. Like *sql.Conn, it is for one goroutine at a time.
type Conn struct {
	db   *DB
	conn *sql.Conn
}

// WrapConn adopts a connection you took from this database's pool.
func (db *DB) WrapConn(c *sql.Conn) *Conn { return &Conn{db: db, conn: c} }

// Conn takes one connection from the pool. Close it when done.
func (db *DB) Conn(ctx context.Context) (*Conn, error) {
	c, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, db.wrapErr("take connection", err)
	}
	return &Conn{db: db, conn: c}, nil
}

// Dialect returns the engine's dialect.
func (c *Conn) Dialect() dialect.Dialect { return c.db.d }

// SQL returns the underlying *sql.Conn.
func (c *Conn) SQL() *sql.Conn { return c.conn }

// Close returns the connection to the pool.
func (c *Conn) Close() error { return c.conn.Close() }

func (c *Conn) handle() handle {
	if c == nil || c.db == nil || c.conn == nil {
		return handle{}
	}
	return handle{db: c.db, q: c.conn, conn: c.conn}
}
