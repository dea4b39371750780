package pgxrf

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// txSession is a pgx.Tx as a session.Tx.
type txSession struct {
	querier
	tx pgx.Tx
}

var _ session.Tx = (*txSession)(nil)

func newTxSession(tx pgx.Tx) *txSession { return &txSession{querier{tx}, tx} }

// Commit commits. Its errors say what is known of the outcome:
//   - ctx already ended: COMMIT is not sent, the transaction is rolled
//     back, and the error matches sql.ErrTxDone and ctx's error, as
//     database/sql's Commit does;
//   - the server answered with an error: that error (a serialization
//     failure at commit, a deferred constraint…), known not committed;
//   - no answer: the error is classified as a lost connection (or a
//     cancellation), which racefree reports as commit-outcome-unknown. pgx
//     may call such an error safe to retry (it believes nothing was sent);
//     for a COMMIT that claim is not trusted: the bytes may have reached
//     the server.
func (t *txSession) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		_ = t.tx.Rollback(context.WithoutCancel(ctx))
		return errors.Join(sql.ErrTxDone, err)
	}
	err := t.tx.Commit(ctx)
	if err == nil || errors.Is(err, pgx.ErrTxCommitRollback) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return err
	}
	if ctx.Err() != nil {
		return dialect.Wrap(dialect.ClassCanceled, err)
	}
	return dialect.Wrap(dialect.ClassConnection, err)
}

// Rollback rolls back; on a transaction already ended the error matches
// sql.ErrTxDone, as database/sql's does.
func (t *txSession) Rollback(ctx context.Context) error {
	err := t.tx.Rollback(ctx)
	if errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("%w (%w)", sql.ErrTxDone, err)
	}
	return err
}
