package racefree

import (
	"context"
	"database/sql"
	"errors"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
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
	q    session.Querier // the pool, a connection or a transaction
	tx   *Tx             // non-nil inside a transaction
	conn *Conn           // non-nil for a *Conn
	// pinned is the *sql.Conn that statements on q run on, when racefree
	// knows it (a *Conn, or a transaction RunInTx began on one): native
	// reads borrow it (see call_native.go).
	pinned *sql.Conn
}

// onPool reports whether the handle runs statements on the pool itself,
// where prepared statements and retries of whole operations are racefree's.
func (h handle) onPool() bool { return h.tx == nil && h.conn == nil }

var errNilExecutor = errors.New("racefree: nil executor (a *DB, *Tx or *Conn is needed)")

// errNotSQLTx is what the database/sql methods of a Tx return when the
// transaction is of another client library.
var errNotSQLTx = errors.New("racefree: not a database/sql transaction: use Tx.Exec, Query and QueryRow, or the client library's own transaction")

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
	if db == nil || db.pool == nil {
		return handle{}
	}
	return handle{db: db, q: db.pool}
}

// Tx is a transaction racefree operations can run in. [RunInTx] creates
// one and commits or rolls it back; [DB.WrapTx] adopts yours, which racefree
// then never commits or rolls back. Like *sql.Tx, a Tx is for one goroutine
// at a time.
type Tx struct {
	db  *DB
	tx  session.Tx
	sql *sql.Tx // the *sql.Tx behind tx, when it is one
	// pinned is the *sql.Conn the transaction runs on, when RunInTx began
	// it on one; nil for a transaction the caller began (WrapTx).
	pinned *sql.Conn
	opts   sql.TxOptions
	known  bool // opts.Isolation is what the transaction really runs at
	spSeq  int  // savepoint names issued so far; see savepoint
	// ownsCommit is set in the transactions RunInTx begins, which racefree
	// commits; keptSavepoint once one of their savepoints was left open
	// for COMMIT to release (see savepoint).
	ownsCommit, keptSavepoint bool
	// doomed is the serialization failure or deadlock met in a savepoint
	// of such a transaction: RunInTx runs the transaction again, whatever
	// fn made of the error (see savepoint).
	doomed error
}

// WrapTx adopts a transaction you began on this database. Pass the options
// you gave BeginTx, or nil if you do not know them; racefree uses the
// isolation level to choose how to recover from a lost race, and when it is
// unknown it assumes the strictest case that still lets it work.
func (db *DB) WrapTx(tx *sql.Tx, opts *sql.TxOptions) *Tx {
	t := db.WrapSessionTx(session.SQLTx{Tx: tx}, opts)
	t.sql = tx
	return t
}

// WrapSessionTx is WrapTx for a transaction of another client library
// than database/sql, through the session contract: it is for adapter
// packages such as pgxrf.
func (db *DB) WrapSessionTx(tx session.Tx, opts *sql.TxOptions) *Tx {
	t := &Tx{db: db, tx: tx}
	if opts != nil {
		t.opts, t.known = *opts, true
	}
	return t
}

// Dialect returns the engine's dialect.
func (tx *Tx) Dialect() dialect.Dialect { return tx.db.d }

// SQL returns the underlying *sql.Tx, or nil when the transaction is of
// another client library (see WrapSessionTx). Do not commit or roll it back
// inside RunInTx: the runner does that.
func (tx *Tx) SQL() *sql.Tx { return tx.sql }

// Session returns the transaction as racefree runs statements on it.
func (tx *Tx) Session() session.Tx { return tx.tx }

// DB returns the database the transaction belongs to.
func (tx *Tx) DB() *DB { return tx.db }

// Isolation returns the isolation level the transaction was begun with, and
// whether it is known (false for a wrapped transaction without options).
// sql.LevelDefault means the server's default.
func (tx *Tx) Isolation() (sql.IsolationLevel, bool) { return tx.opts.Isolation, tx.known }

// Exec runs a statement in the transaction, whatever client library is
// behind it.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	return tx.tx.Exec(ctx, query, args...)
}

// Query runs a query in the transaction, whatever client library is
// behind it.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	return tx.tx.Query(ctx, query, args...)
}

// QueryRow runs a query that returns at most one row, whatever client
// library is behind the transaction.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	return tx.tx.QueryRow(ctx, query, args...)
}

// ExecContext, QueryContext, QueryRowContext and PrepareContext run on the
// *sql.Tx, so that a *Tx can be handed to code written for database/sql
// (sqlc's generated New(db DBTX), for one). On a transaction of another
// client library they fail with errNotSQLTx; use Exec, Query and QueryRow,
// or that library's own transaction.

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if tx.sql == nil {
		return nil, errNotSQLTx
	}
	return tx.sql.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if tx.sql == nil {
		return nil, errNotSQLTx
	}
	return tx.sql.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if tx.sql == nil {
		return failedRow(ctx, errNotSQLTx)
	}
	return tx.sql.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares a statement for use in the transaction.
func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if tx.sql == nil {
		return nil, errNotSQLTx
	}
	return tx.sql.PrepareContext(ctx, query)
}

func (tx *Tx) handle() handle {
	if tx == nil || tx.db == nil || tx.tx == nil {
		return handle{}
	}
	return handle{db: tx.db, q: tx.tx, tx: tx, pinned: tx.pinned}
}

// Conn is one connection pinned from the pool, for work that must stay on
// one session. Like *sql.Conn, it is for one goroutine at a time.
type Conn struct {
	db   *DB
	conn session.Conn
	sql  *sql.Conn // the *sql.Conn behind conn, when it is one
}

// WrapConn adopts a connection you took from this database's pool.
func (db *DB) WrapConn(c *sql.Conn) *Conn {
	return &Conn{db: db, conn: session.SQLConn{Conn: c}, sql: c}
}

// WrapSessionConn is WrapConn for a connection of another client library
// than database/sql, through the session contract.
func (db *DB) WrapSessionConn(c session.Conn) *Conn { return &Conn{db: db, conn: c} }

// Conn takes one connection from the pool. Close it when done.
func (db *DB) Conn(ctx context.Context) (*Conn, error) {
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, db.wrapErr("take connection", err)
	}
	conn := &Conn{db: db, conn: c}
	if sc, ok := c.(session.SQLConn); ok {
		conn.sql = sc.Conn
	}
	return conn, nil
}

// Dialect returns the engine's dialect.
func (c *Conn) Dialect() dialect.Dialect { return c.db.d }

// SQL returns the underlying *sql.Conn, or nil when the connection is of
// another client library.
func (c *Conn) SQL() *sql.Conn { return c.sql }

// Session returns the connection as racefree runs statements on it.
func (c *Conn) Session() session.Conn { return c.conn }

// Close returns the connection to the pool.
func (c *Conn) Close() error { return c.conn.Release() }

func (c *Conn) handle() handle {
	if c == nil || c.db == nil || c.conn == nil {
		return handle{}
	}
	return handle{db: c.db, q: c.conn, conn: c, pinned: c.sql}
}
