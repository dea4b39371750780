package gormrf

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
)

// RunInTx runs fn in a transaction and commits it, retrying the whole
// transaction when it fails in a way that running it again can fix:
// serialization failures, deadlocks, SQLite's busy errors, connections lost
// before anything was sent. It is racefree.RunInTx (see there for budgets,
// backoff, commit-unknown errors and panics) with fn receiving a *gorm.DB
// bound to the transaction, on which GORM's whole API and gormrf's
// functions work; gormrf calls inside know the isolation level opts gave.
//
// fn must return the errors it meets (tx.Error from GORM calls), wrapped
// with %w if at all: RunInTx decides whether to retry by classifying them.
// Leave gorm.Config.TranslateError off, or GORM replaces a unique
// violation with gorm.ErrDuplicatedKey (never retried anyway). fn may run
// more than once; it must not commit or roll back tx. When db is already
// bound to a transaction, fn runs in a savepoint of it and is not retried
// on its own (racefree.RunInTx on a *Tx). ctx governs the transaction
// and is the context of tx's statements.
func RunInTx(ctx context.Context, db *gorm.DB, opts racefree.TxOptions, fn func(tx *gorm.DB) error) error {
	if fn == nil {
		return errors.New("gormrf: run transaction: nil function")
	}
	p, err := pluginOf(db)
	if err != nil {
		return err
	}
	ex, err := Executor(db)
	if err != nil {
		return err
	}
	return racefree.RunInTx(ctx, ex, opts, func(ctx context.Context, rtx *racefree.Tx) error {
		sqlTx := rtx.SQL()
		if _, loaded := p.txs.LoadOrStore(sqlTx, rtx); !loaded {
			defer p.txs.Delete(sqlTx)
		}
		tx := db.Session(&gorm.Session{Context: ctx, NewDB: true})
		tx.Statement.ConnPool = sqlTx
		return fn(tx)
	})
}
