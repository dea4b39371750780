package racefree

import (
	"context"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// preparedPool is the pool as a dialect's transfer statements run on it:
// queries go through statements prepared once and kept on DB.stmts (one
// per statement text, closed by Close) where the engine gains by it
// (dialect.PrepareOnPool: SQLite parses every statement it is given);
// Exec goes through the prepared statement when it is database/sql's,
// and runs the text otherwise, as session.Stmt has no Exec.
type preparedPool struct{ db *DB }

var _ dialect.Querier = preparedPool{}

// transferQuerier returns what the statements of a transfer on the pool
// run on.
func (db *DB) transferQuerier() dialect.Querier {
	if _, ok := db.pool.(session.Preparer); ok && db.d.Features().Has(dialect.PrepareOnPool) {
		return preparedPool{db: db}
	}
	return db.pool
}

func (p preparedPool) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	if s, ok := p.db.poolStmt(ctx, query).(session.SQLStmt); ok {
		return s.Stmt.ExecContext(ctx, args...)
	}
	return p.db.pool.Exec(ctx, query, args...)
}

func (p preparedPool) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	if s := p.db.poolStmt(ctx, query); s != nil {
		return s.Query(ctx, args...)
	}
	return p.db.pool.Query(ctx, query, args...)
}

func (p preparedPool) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	if s := p.db.poolStmt(ctx, query); s != nil {
		return s.QueryRow(ctx, args...)
	}
	return p.db.pool.QueryRow(ctx, query, args...)
}

// poolStmt returns the pool's prepared statement for query, preparing it
// the first time; nil when it cannot be prepared (the error then shows
// when the query runs unprepared).
func (db *DB) poolStmt(ctx context.Context, query string) session.Stmt {
	if s, ok := db.stmts.Load(query); ok {
		return s.(session.Stmt)
	}
	p, ok := db.pool.(session.Preparer)
	if !ok {
		return nil
	}
	s, err := p.Prepare(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(session.Stmt)
	}
	return s
}

// txPrepared is one of the DB's own transactions as a dialect's transfer
// statements run in it: through the pool's prepared statements, bound to
// the transaction (database/sql prepares each once per connection), where
// the engine gains by them, as preparedPool does on the pool.
type txPrepared struct {
	tx *Tx
	ts session.TxStmter
}

var _ dialect.Querier = txPrepared{}

// transferQuerier returns what the statements of a transfer inside tx run
// on.
func (tx *Tx) transferQuerier() dialect.Querier {
	ts, ok := tx.tx.(session.TxStmter)
	if !ok {
		return tx.tx
	}
	if _, ok := tx.db.pool.(session.Preparer); !ok || !tx.db.d.Features().Has(dialect.PrepareOnPool) {
		return tx.tx
	}
	return txPrepared{tx: tx, ts: ts}
}

// stmt returns query prepared for the transaction (see poolStmt).
func (p txPrepared) stmt(ctx context.Context, query string) session.Stmt {
	return p.tx.poolStmt(ctx, query)
}

// poolStmt returns the pool's prepared statement for query bound to the
// transaction (database/sql prepares it once per connection and reuses
// it), or nil when the transaction cannot run one or the pool has not
// prepared query yet (a call on the pool does): preparing it here would
// take a second connection from the pool while this one holds the
// transaction's locks, and a pool whose every connection did so would
// wait for itself.
func (tx *Tx) poolStmt(ctx context.Context, query string) session.Stmt {
	s, ok := tx.db.stmts.Load(query)
	if !ok {
		return nil
	}
	ts, ok := tx.tx.(session.TxStmter)
	if !ok {
		return nil
	}
	return ts.TxStmt(ctx, s.(session.Stmt))
}

func (p txPrepared) Exec(ctx context.Context, query string, args ...any) (session.Result, error) {
	if s, ok := p.stmt(ctx, query).(session.SQLStmt); ok {
		return s.Stmt.ExecContext(ctx, args...)
	}
	return p.tx.tx.Exec(ctx, query, args...)
}

func (p txPrepared) Query(ctx context.Context, query string, args ...any) (session.Rows, error) {
	if s := p.stmt(ctx, query); s != nil {
		return s.Query(ctx, args...)
	}
	return p.tx.tx.Query(ctx, query, args...)
}

func (p txPrepared) QueryRow(ctx context.Context, query string, args ...any) session.Row {
	if s := p.stmt(ctx, query); s != nil {
		return s.QueryRow(ctx, args...)
	}
	return p.tx.tx.QueryRow(ctx, query, args...)
}
