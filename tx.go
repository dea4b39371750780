package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// TxFunc is the body of a transaction. It must return every database error
// it meets, wrapped with %w if at all: RunInTx decides whether to retry by
// classifying the returned error, and an error turned into text or replaced
// stops retries silently.
type TxFunc func(ctx context.Context, tx *Tx) error

// RunInTx runs fn in a transaction on ex and commits it, retrying the whole
// transaction when it fails in a way that running it again can fix.
//
// ex decides where the transaction runs:
//   - *DB: a new transaction on a pooled connection; each attempt may get
//     another connection.
//   - *Conn: a new transaction on that connection.
//   - *Tx: a nested transaction, as a savepoint inside the running one. It
//     is not retried on its own: a serialization failure or deadlock dooms
//     the whole outer transaction, so the error goes up to the outer RunInTx,
//     which retries everything. An error from fn rolls back to the savepoint
//     and the outer transaction goes on.
//
// Retried: serialization failures (ErrSerialization), deadlocks
// (ErrDeadlock), SQLite's busy errors (ErrBusy) and connections that failed
// before anything was sent (ErrNotSent); each of these means the transaction
// did not commit and may succeed if run again. Everything else is returned
// at once: unique violations, lock timeouts (MySQL's 1205 rolls back only
// the statement, and a lock held past the timeout is news for the caller),
// canceled contexts, and errors of fn's own. Between attempts RunInTx
// pauses with jittered exponential backoff and checks ctx. When the attempt
// or time budget is spent, or ctx ends while retrying, the error is a
// *RetryError holding the last attempt's error and the reason.
//
// A COMMIT whose answer never came (the connection broke or ctx ended while
// it was in flight) returns *CommitUnknownError and is never retried.
//
// A panic in fn rolls the transaction back and panics again. fn must not
// commit or roll back tx itself. ctx governs the transaction: if it ends,
// the transaction is rolled back.
func RunInTx(ctx context.Context, ex Executor, opts TxOptions, fn TxFunc) error {
	h, err := handleOf(ex)
	if err != nil {
		return fmt.Errorf("racefree: run transaction: %w", err)
	}
	if fn == nil {
		return errors.New("racefree: run transaction: nil function")
	}
	if err := h.db.checkTxOptions(opts); err != nil {
		return err
	}
	if h.tx != nil {
		return h.tx.runNested(ctx, opts, fn)
	}
	var b session.Beginner = h.db.pool
	if h.conn != nil {
		b = h.conn.conn
	}
	begin := func(ctx context.Context) (session.Tx, error) { return b.Begin(ctx, *opts.sqlOptions()) }
	return h.db.retry(ctx, opts, func(ctx context.Context) error {
		return h.db.runOnce(ctx, opts, begin, fn)
	})
}

// retry runs attempt until it succeeds, fails with an error that is not
// retryable, or the budget is spent.
func (db *DB) retry(ctx context.Context, opts TxOptions, attempt func(context.Context) error) error {
	start := time.Now()
	policy := opts.backoff()
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		ce := db.d.Classify(err)
		if !ce.Class.Retryable() || errors.As(err, new(*CommitUnknownError)) {
			return err
		}
		elapsed := time.Since(start)
		if n >= opts.maxAttempts() {
			return &RetryError{Attempts: n, Elapsed: elapsed, LastErr: err, Reason: ErrAttemptsExhausted}
		}
		delay := policy.Delay(n)
		if elapsed+delay > opts.maxElapsed() {
			return &RetryError{Attempts: n, Elapsed: elapsed, LastErr: err, Reason: ErrTimeBudgetSpent}
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(deadline) {
			// Sleeping would only run into the deadline: give up now.
			return &RetryError{Attempts: n, Elapsed: elapsed, LastErr: err, Reason: context.DeadlineExceeded}
		}
		if opts.OnRetry != nil {
			opts.OnRetry(n, err, delay)
		}
		if serr := sleep(ctx, delay); serr != nil {
			return &RetryError{Attempts: n, Elapsed: time.Since(start), LastErr: err, Reason: serr}
		}
	}
}

// sleep waits d or until ctx ends, and returns ctx's error if it ended.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runOnce is one attempt: begin, fn, commit. Errors keep their class.
func (db *DB) runOnce(ctx context.Context, opts TxOptions, begin func(context.Context) (session.Tx, error), fn TxFunc) (err error) {
	stx, err := begin(ctx)
	if err != nil {
		return db.wrapErr("begin transaction", err)
	}
	tx := &Tx{db: db, tx: stx, opts: *opts.sqlOptions(), known: true}
	if s, ok := stx.(session.SQLTx); ok {
		tx.sql = s.Tx
	}
	defer func() {
		if p := recover(); p != nil {
			// The rollback must happen even if ctx is what made fn panic.
			_ = stx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return db.rollbackAfter(ctx, stx, err)
	}
	if err := stx.Commit(ctx); err != nil {
		return db.commitError(ctx, err)
	}
	return nil
}

// rollbackAfter rolls back after fn failed with fnErr and returns fnErr,
// classified, joined with the rollback's own failure if there was one.
func (db *DB) rollbackAfter(ctx context.Context, stx session.Tx, fnErr error) error {
	classified := classifyTransparent(db.d, fnErr)
	if rbErr := stx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
		return errors.Join(classified, fmt.Errorf("racefree: roll back transaction: %w", rbErr))
	}
	return classified
}

// classifyTransparent returns err wrapped in its class when the class is
// known, so that errors.Is(err, ErrDeadlock) works on a raw driver error;
// the message is unchanged.
func classifyTransparent(d dialect.Dialect, err error) error {
	var ce *dialect.Error
	if errors.As(err, &ce) && ce.Class != dialect.ClassOther {
		return err
	}
	if c := d.Classify(err); c.Class != dialect.ClassOther {
		return c
	}
	return err
}

// commitError sorts a failed COMMIT into "known not committed" (the server
// answered with an error, or nothing was sent) and "outcome unknown".
func (db *DB) commitError(ctx context.Context, err error) error {
	if errors.Is(err, sql.ErrTxDone) || (ctx.Err() != nil && err == ctx.Err()) {
		// database/sql rolled back (or refused to send COMMIT) because ctx
		// ended first: nothing was committed.
		return fmt.Errorf("racefree: commit transaction: %w", dialect.Wrap(dialect.ClassCanceled, errors.Join(err, ctx.Err())))
	}
	ce := db.d.Classify(err)
	switch {
	case ce.Class == dialect.ClassConnection, ce.Class == dialect.ClassCanceled,
		ce.Class == dialect.ClassOther && ce.Code == "":
		return &CommitUnknownError{Err: ce}
	}
	return fmt.Errorf("racefree: commit transaction: %w", ce)
}

// runNested runs fn inside a savepoint of tx.
func (tx *Tx) runNested(ctx context.Context, opts TxOptions, fn TxFunc) error {
	if opts.Isolation != sql.LevelDefault && (!tx.known || opts.Isolation != tx.opts.Isolation) {
		return fmt.Errorf("racefree: run nested transaction: cannot change the isolation level to %v inside a running transaction", opts.Isolation)
	}
	if opts.ReadOnly && !tx.opts.ReadOnly {
		return errors.New("racefree: run nested transaction: cannot make part of a read-write transaction read-only")
	}
	return tx.savepoint(ctx, func(ctx context.Context) error { return fn(ctx, tx) })
}

// savepoint runs fn between SAVEPOINT and RELEASE. When fn fails or panics
// it rolls back to the savepoint, which undoes fn's writes and, on
// PostgreSQL, clears the aborted state a failed statement leaves, so that
// the transaction can go on.
func (tx *Tx) savepoint(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	tx.spSeq++
	name := "racefree_sp_" + strconv.Itoa(tx.spSeq)
	if _, err := tx.tx.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return tx.db.wrapErr("create savepoint", err)
	}
	rollback := func(ctx context.Context) error {
		_, err := tx.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
		if err == nil {
			_, err = tx.tx.Exec(ctx, "RELEASE SAVEPOINT "+name)
		}
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(ctx); err != nil {
		classified := classifyTransparent(tx.db.d, err)
		if rbErr := rollback(context.WithoutCancel(ctx)); rbErr != nil {
			// After a deadlock MySQL has already rolled back the whole
			// transaction and the savepoint with it: the original error is
			// what matters, but the failed rollback is not hidden.
			return errors.Join(classified, fmt.Errorf("racefree: roll back to savepoint: %w", rbErr))
		}
		return classified
	}
	if _, err := tx.tx.Exec(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return tx.db.wrapErr("release savepoint", err)
	}
	return nil
}

// checkTxOptions refuses options the engine cannot honour, rather than
// running the transaction without them.
func (db *DB) checkTxOptions(opts TxOptions) error {
	f := db.d.Features()
	switch {
	case opts.ReadOnly && !f.Has(dialect.ReadOnlyTx):
		return fmt.Errorf("racefree: run transaction: %w: %s cannot begin read-only transactions", ErrUnsupported, db.d.Server())
	case opts.Isolation == sql.LevelSerializable && !f.Has(dialect.SerializableIsolation):
		return fmt.Errorf("racefree: run transaction: %w: %s has no SERIALIZABLE isolation", ErrUnsupported, db.d.Server())
	}
	return nil
}
