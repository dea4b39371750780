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

func (p SQLPool) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return p.DB.ExecContext(ctx, query, args...)
}

func (p SQLPool) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(p.DB.QueryContext(ctx, query, args...))
}

func (p SQLPool) QueryRow(ctx context.Context, query string, args ...any) Row {
	return p.DB.QueryRowContext(ctx, query, args...)
}

func (p SQLPool) Begin(ctx context.Context, opts TxOptions) (Tx, error) {
	tx, err := p.DB.BeginTx(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return SQLTx{tx}, nil
}

func (p SQLPool) Acquire(ctx context.Context) (Conn, error) {
	c, err := p.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return SQLConn{c}, nil
}

func (p SQLPool) Prepare(ctx context.Context, query string) (Stmt, error) {
	s, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return SQLStmt{s}, nil
}

func (c SQLConn) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return c.Conn.ExecContext(ctx, query, args...)
}

func (c SQLConn) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(c.Conn.QueryContext(ctx, query, args...))
}

func (c SQLConn) QueryRow(ctx context.Context, query string, args ...any) Row {
	return c.Conn.QueryRowContext(ctx, query, args...)
}

func (c SQLConn) Begin(ctx context.Context, opts TxOptions) (Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, &opts)
	if err != nil {
		return nil, err
	}
	return SQLTx{tx}, nil
}

func (c SQLConn) Release() error { return c.Conn.Close() }

// Discard closes the connection for good: a driver.ErrBadConn from Raw
// makes database/sql drop it instead of pooling it.
func (c SQLConn) Discard() error {
	_ = c.Conn.Raw(func(any) error { return driver.ErrBadConn })
	return c.Conn.Close()
}

func (t SQLTx) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t SQLTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return rowsOrNil(t.Tx.QueryContext(ctx, query, args...))
}

func (t SQLTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// Commit commits; database/sql's Commit takes no context (the one the
// transaction began with governs it).
func (t SQLTx) Commit(context.Context) error { return t.Tx.Commit() }

func (t SQLTx) Rollback(context.Context) error { return t.Tx.Rollback() }

func (t SQLTx) TxStmt(ctx context.Context, s Stmt) Stmt {
	return SQLStmt{t.Tx.StmtContext(ctx, s.(SQLStmt).Stmt)}
}

func (s SQLStmt) Query(ctx context.Context, args ...any) (Rows, error) {
	return rowsOrNil(s.Stmt.QueryContext(ctx, args...))
}

func (s SQLStmt) QueryRow(ctx context.Context, args ...any) Row {
	return s.Stmt.QueryRowContext(ctx, args...)
}

func (s SQLStmt) Close() error { return s.Stmt.Close() }

// rowsOrNil keeps a nil *sql.Rows from becoming a non-nil Rows.
func rowsOrNil(rs *sql.Rows, err error) (Rows, error) {
	if err != nil {
		return nil, err
	}
	return rs, nil
}
