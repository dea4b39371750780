// Package session is the contract between racefree and a database API:
// what racefree needs to run statements and transactions, whichever
// client library the program uses. Package racefree implements it over
// database/sql (racefree.New, racefree.Open); package pgxrf implements it
// over pgx (pgxpool.Pool, pgx.Conn, pgx.Tx). The dialect packages read the
// server's version and catalog through it.
//
// Programs do not use this package: they get a *racefree.DB from one of
// those constructors. It is for adapters to other client libraries, the
// way database/sql/driver is for database drivers.
//
// Values passed as arguments are bound parameters. Rows are scanned into
// pointers to Go values as database/sql's Scan does; a Row whose query
// returned no row reports ErrNoRows.
package session

import (
	"context"
	"database/sql"
)

// ErrNoRows is what Row.Scan returns when the query returned no row. It
// is database/sql's sentinel, so that errors.Is(err, sql.ErrNoRows) holds
// whichever adapter ran the query.
var ErrNoRows = sql.ErrNoRows

// Querier runs statements: a pool, a pinned connection or a transaction.
type Querier interface {
	// Exec runs a statement and returns how many rows it affected.
	Exec(ctx context.Context, query string, args ...any) (Result, error)
	// Query runs a query; the caller closes the rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query expected to return at most one row; its
	// error, if any, is reported by Scan.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Result is the outcome of Exec.
type Result interface {
	// RowsAffected is the number of rows the statement changed (on
	// MySQL: changed, not matched, unless the connection says otherwise).
	RowsAffected() (int64, error)
}

// Rows is the result of Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Row is the result of QueryRow.
type Row interface {
	// Scan copies the row's columns into dest, or returns ErrNoRows.
	Scan(dest ...any) error
}

// TxOptions are the options a transaction begins with.
type TxOptions = sql.TxOptions

// Beginner begins transactions.
type Beginner interface {
	Begin(ctx context.Context, opts TxOptions) (Tx, error)
}

// Pool is a pool of connections: statements run on any of them.
type Pool interface {
	Querier
	Beginner
	// Acquire takes one connection from the pool for work that must stay
	// on one session; Release gives it back.
	Acquire(ctx context.Context) (Conn, error)
}

// Conn is one connection taken from a Pool.
type Conn interface {
	Querier
	Beginner
	// Release returns the connection to its pool.
	Release() error
}

// Tx is a transaction.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Preparer is implemented by pools whose statements run faster prepared
// once and kept (database/sql over MySQL and SQLite). A pool without it
// runs statements as text; its driver may cache them itself (pgx does).
type Preparer interface {
	Prepare(ctx context.Context, query string) (Stmt, error)
}

// Stmt is a prepared statement of a Preparer, for use on the pool, or in
// a transaction of the pool through TxStmt.
type Stmt interface {
	Query(ctx context.Context, args ...any) (Rows, error)
	QueryRow(ctx context.Context, args ...any) Row
	Close() error
}

// TxStmter is implemented by transactions that can run a statement the
// pool prepared (database/sql's Tx.StmtContext).
type TxStmter interface {
	TxStmt(ctx context.Context, s Stmt) Stmt
}

// Discarder is implemented by connections that can be closed instead of
// returned to their pool: what a session-scoped lock must do when it can
// no longer tell whether the connection holds the lock, so that the
// server releases it. A connection without it is released. Discard after
// Release must be harmless.
type Discarder interface {
	Discard() error
}
