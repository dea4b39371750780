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
// Exec runs the text, as session.Stmt has no Exec.
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
