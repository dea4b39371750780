package session

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// The database/sql side of the contract: racefree's statements and
// transactions run through these when the DB was made by racefree.New or
// racefree.Open. Package pgxrf implements the same contract over pgx.

// SQLPool is a *sql.DB as a Pool.
type SQLPool struct{ DB *sql.DB }

// SQLConn is a *sql.Conn as a Conn.
type SQLConn struct{ Conn *sql.Conn }

// SQLTx is a *sql.Tx as a Tx.
type SQLTx struct{ Tx *sql.Tx }

// SQLStmt is a *sql.Stmt as a Stmt.
type SQLStmt struct{ Stmt *sql.Stmt }

var (
	_ Pool      = SQLPool{}
	_ Preparer  = SQLPool{}
	_ Conn      = SQLConn{}
	_ Discarder = SQLConn{}
	_ Tx        = SQLTx{}
	_ TxStmter  = SQLTx{}
	_ Stmt      = SQLStmt{}
)

// Exec runs a statement on a pooled connection (DB.ExecContext).
func (p SQLPool) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return p.DB.ExecContext(ctx, query, args...)
}

// Query runs a query on a pooled connection (DB.QueryContext). The
// connection stays out of the pool until the rows are closed.
func (p SQLPool) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(p.DB.QueryContext(ctx, query, args...))
}

// QueryRow runs a query expected to return at most one row
// (DB.QueryRowContext); errors are deferred to the Row's Scan.
func (p SQLPool) QueryRow(ctx context.Context, query string, args ...any) Row {
	return p.DB.QueryRowContext(ctx, query, args...)
}

// Begin begins a transaction on a pooled connection with opts
// (DB.BeginTx); ctx governs the whole transaction, as in database/sql.
func (p SQLPool) Begin(ctx context.Context, opts TxOptions) (Tx, error) {
	tx, err := p.DB.BeginTx(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return SQLTx{tx}, nil
}

// Acquire pins one connection of the pool (DB.Conn); Release returns it.
func (p SQLPool) Acquire(ctx context.Context) (Conn, error) {
	c, err := p.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return SQLConn{c}, nil
}

// Prepare prepares a statement for the pool (DB.PrepareContext): database/sql
// re-prepares it on each connection that runs it.
func (p SQLPool) Prepare(ctx context.Context, query string) (Stmt, error) {
	s, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return SQLStmt{s}, nil
}

// Exec runs a statement on the pinned connection.
func (c SQLConn) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return c.Conn.ExecContext(ctx, query, args...)
}

// Query runs a query on the pinned connection; close the rows before the
// next statement on it.
func (c SQLConn) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(c.Conn.QueryContext(ctx, query, args...))
}

// QueryRow runs a query expected to return at most one row on the pinned
// connection.
func (c SQLConn) QueryRow(ctx context.Context, query string, args ...any) Row {
	return c.Conn.QueryRowContext(ctx, query, args...)
}

// Begin begins a transaction on the pinned connection with opts.
func (c SQLConn) Begin(ctx context.Context, opts TxOptions) (Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return SQLTx{tx}, nil
}

// Release returns the connection to the pool (sql.Conn.Close).
func (c SQLConn) Release() error { return c.Conn.Close() }

// Discard closes the connection for good: a driver.ErrBadConn from Raw
// makes database/sql drop it instead of pooling it.
func (c SQLConn) Discard() error {
	_ = c.Conn.Raw(func(any) error { return driver.ErrBadConn })
	return c.Conn.Close()
}

// Exec runs a statement in the transaction.
func (t SQLTx) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return t.Tx.ExecContext(ctx, query, args...)
}

// Query runs a query in the transaction; close the rows before the next
// statement in it.
func (t SQLTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(t.Tx.QueryContext(ctx, query, args...))
}

// QueryRow runs a query expected to return at most one row in the
// transaction.
func (t SQLTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// Commit commits; database/sql's Commit takes no context (the one the
// transaction began with governs it).
func (t SQLTx) Commit(context.Context) error { return t.Tx.Commit() }

// Rollback rolls the transaction back; like Commit, it ignores its context
// because database/sql's Rollback takes none.
func (t SQLTx) Rollback(context.Context) error { return t.Tx.Rollback() }

// TxStmt returns s, which must be an SQLStmt prepared on the same *sql.DB,
// bound to the transaction (Tx.StmtContext).
func (t SQLTx) TxStmt(ctx context.Context, s Stmt) Stmt {
	return SQLStmt{t.Tx.StmtContext(ctx, s.(SQLStmt).Stmt)}
}

// Query runs the prepared query with args.
func (s SQLStmt) Query(ctx context.Context, args ...any) (Rows, error) {
	return rowsOrNil(s.Stmt.QueryContext(ctx, args...))
}

// QueryRow runs the prepared query, expected to return at most one row,
// with args.
func (s SQLStmt) QueryRow(ctx context.Context, args ...any) Row {
	return s.Stmt.QueryRowContext(ctx, args...)
}

// Close releases the prepared statement on every connection.
func (s SQLStmt) Close() error { return s.Stmt.Close() }

// rowsOrNil keeps a nil *sql.Rows from becoming a non-nil Rows.
func rowsOrNil(rs *sql.Rows, err error) (Rows, error) {
	if err != nil {
		return nil, err
	}
	return rs, nil
}
