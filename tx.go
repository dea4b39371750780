package racefree

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/backoff"
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
//     which retries everything — even when the outer fn swallows it, if
//     RunInTx began the outer transaction. Another error from fn rolls back
//     to the savepoint and the outer transaction goes on.
//
// What is retried depends on the class of the error and on the phase it
// came from; every retried attempt certainly did not commit:
//   - any phase: serialization failures (ErrSerialization), deadlocks
//     (ErrDeadlock), SQLite's busy errors (ErrBusy), connections that failed
//     before anything was sent (ErrNotSent), and a server that could not be
//     reached or turned the session away (ErrUnavailable), the last after
//     longer pauses (Backoff.OutageBaseDelay): an outage is waited out
//     within the budgets, not hammered.
//   - BEGIN, on a *DB: a connection lost under it (ErrConnection). Nothing
//     had begun that could commit.
//   - a statement of fn, on a *DB: a connection lost under it, when the
//     rollback that follows shows the transaction's own connection dead
//     too. COMMIT was never sent, so the server rolls the transaction back.
//     (A connection error from another connection fn used is returned: the
//     statement it cut may have run.)
//   - COMMIT: only an answer the server gave (a serialization failure or
//     deadlock found at commit, a Galera certification failure), or
//     driver.ErrBadConn, which database/sql drivers return only when
//     nothing was written. A COMMIT cut off without an answer — a lost
//     connection, an ended context, a session the server ended, or a
//     driver's claim of "safe to retry" (pgx reports a COMMIT cut in
//     flight as such) — may have committed: it returns *CommitUnknownError
//     and is never retried, unless TxOptions.VerifyCommit settles it.
//
// Everything else is returned at once: unique violations, lock timeouts
// (MySQL's 1205 rolls back only the statement, and a lock held past the
// timeout is news for the caller), canceled contexts, and errors of fn's
// own. Between attempts RunInTx pauses as opts.Retry says (Backoff's
// jittered exponential pauses by default) and checks ctx. When the policy
// stops (a budget spent), or ctx ends while retrying, the error is a
// *RetryError holding the last attempt's error and the reason.
//
// fn must not run statements that commit on their own (MySQL's DDL, LOCK
// TABLES): a retry after one would apply what it committed twice.
//
// A panic in fn rolls the transaction back and panics again. fn must not
// commit or roll back tx itself. ctx governs the transaction: if it ends,
// the transaction is rolled back and its connection returned to the pool,
// or closed when its state is in doubt.
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
	r := txRun{db: h.db, opts: opts, fn: fn}
	if h.conn != nil {
		r.conn = h.conn.conn
	}
	if opts.VerifyCommit {
		r.resolver, _ = h.db.d.(dialect.CommitResolver) // checkTxOptions made sure
	}
	return h.db.retry(ctx, opts.Retry, r.once)
}

// txRun is one RunInTx call: what every attempt needs.
type txRun struct {
	db       *DB
	opts     TxOptions
	fn       TxFunc
	conn     session.Conn           // the *Conn's connection; nil: each attempt takes one from the pool
	resolver dialect.CommitResolver // VerifyCommit's, or nil
}

// once is one attempt: BEGIN, fn, COMMIT. Errors keep their class; an
// error the phase shows to be safe to run again is marked so
// (retrySafeError).
//
// The transaction's lifetime is the attempt's, not ctx's: on the pool the
// attempt takes a connection with ctx, then begins on it with ctx's
// cancellation removed, so that database/sql does not roll the transaction
// back behind its back when ctx ends. Statements still run under ctx and
// stop when it ends; then the attempt rolls back itself, after whatever
// fn's statements must put back (a lock wait's session setting) has been
// put back, and returns the connection to the pool — or closes it when
// its state is in doubt (a failed rollback, an unknown COMMIT), so that no
// pooled connection carries a transaction, a lock or a setting nobody
// knows about.
func (r *txRun) once(ctx context.Context) (err error) {
	db := r.db
	if err := ctx.Err(); err != nil {
		return db.wrapErr("begin transaction", err)
	}
	conn, onPool := r.conn, r.conn == nil
	doubt := false // the connection's state is not known to be clean
	if onPool {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			return r.beginFailed(db.wrapErr("begin transaction: take connection", err))
		}
		conn = c
		defer func() {
			if doubt {
				discardConn(conn)
			} else {
				_ = conn.Release()
			}
		}()
	}
	stx, err := conn.Begin(context.WithoutCancel(ctx), *r.opts.sqlOptions())
	if err != nil {
		err = db.wrapErr("begin transaction", err)
		doubt = db.d.Classify(err).Class.Outage()
		return r.beginFailed(err)
	}
	tx := &Tx{db: db, tx: stx, opts: *r.opts.sqlOptions(), known: true, ownsCommit: true}
	if s, ok := stx.(session.SQLTx); ok {
		tx.sql = s.Tx
		if c, ok := conn.(session.SQLConn); ok {
			tx.pinned = c.Conn
		}
	}
	defer func() {
		if p := recover(); p != nil {
			// The rollback must happen even if ctx is what made fn panic.
			if err := stx.Rollback(context.WithoutCancel(ctx)); err != nil {
				doubt = true
			}
			panic(p)
		}
	}()
	if err := r.fnErr(ctx, tx); err != nil {
		rolledBack, err := r.rollbackAfter(ctx, stx, err)
		doubt = !rolledBack
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		// ctx ended after fn's last statement: the caller gave up, so the
		// transaction must not commit.
		rolledBack, _ := r.rollbackAfter(ctx, stx, cerr)
		doubt = !rolledBack
		return fmt.Errorf("racefree: commit transaction: %w", dialect.Wrap(dialect.ClassCanceled, cerr))
	}
	var txID sql.NullString
	if r.resolver != nil {
		query, _ := r.resolver.TxIDSQL()
		if err := stx.QueryRow(ctx, query).Scan(&txID); err != nil {
			rolledBack, err := r.rollbackAfter(ctx, stx, db.wrapErr("read transaction id", err))
			doubt = !rolledBack
			return err
		}
	}
	if err := stx.Commit(ctx); err != nil {
		err = db.commitError(ctx, err)
		var unknown *CommitUnknownError
		if !errors.As(err, &unknown) {
			return err // the server answered: the transaction is over
		}
		doubt = true
		if r.resolver != nil {
			if !txID.Valid {
				// The transaction wrote nothing: committed or not, the
				// database is the same.
				return nil
			}
			return r.resolveCommit(ctx, txID.String, unknown)
		}
		return err
	}
	return nil
}

// fnErr runs fn in tx. When a savepoint in it met a failure that dooms
// the transaction (tx.doomed), that failure is the attempt's error
// whatever fn returned: nil, or an error of its own after it went on
// (joined with it), so that the transaction runs again rather than
// committing or reporting a consequence as the cause.
func (r *txRun) fnErr(ctx context.Context, tx *Tx) error {
	err := r.fn(ctx, tx)
	switch {
	case tx.doomed == nil:
	case err == nil:
		err = fmt.Errorf("racefree: run transaction: %w", tx.doomed)
	case !dooms(r.db.d, err):
		err = errors.Join(tx.doomed, err)
	}
	return err
}

// beginFailed marks a failure to begin that is safe to run again on the
// pool: a connection cut off before or under BEGIN had begun nothing that
// could commit.
func (r *txRun) beginFailed(err error) error {
	if r.conn == nil && r.db.d.Classify(err).Class == dialect.ClassConnection {
		return &retrySafeError{err}
	}
	return err
}

// rollbackAfter rolls back after fn failed with fnErr and returns fnErr,
// classified, joined with the rollback's own failure if there was one, and
// whether the rollback is known to have happened. When fnErr is a lost
// connection and the rollback shows the transaction's own connection dead
// too, the transaction never reached COMMIT: the error is marked safe to
// run again.
func (r *txRun) rollbackAfter(ctx context.Context, stx session.Tx, fnErr error) (rolledBack bool, err error) {
	db := r.db
	classified := classifyTransparent(db.d, fnErr)
	rbErr := stx.Rollback(context.WithoutCancel(ctx))
	if rbErr == nil || errors.Is(rbErr, sql.ErrTxDone) {
		return true, classified
	}
	err = errors.Join(classified, fmt.Errorf("racefree: roll back transaction: %w", db.d.Classify(rbErr)))
	if r.conn == nil && db.d.Classify(fnErr).Class == dialect.ClassConnection && connectionDead(db.d, rbErr) {
		return false, &retrySafeError{err}
	}
	return false, err
}

// connectionDead reports whether err, from a statement on a connection,
// shows the connection gone.
func connectionDead(d dialect.Dialect, err error) bool {
	return errors.Is(err, driver.ErrBadConn) || d.Classify(err).Class.Outage()
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

// commitError sorts a failed COMMIT into "known not committed" and
// "outcome unknown". Known: database/sql refused to send it (the
// transaction was already done, or ctx ended first and it rolled back), a
// driver.ErrBadConn (database/sql's contract: nothing was written), or an
// answer of the server's that is not about the session ending. Everything
// else may have committed — whatever the driver says: pgx reports a COMMIT
// cut in flight as "conn closed", safe to retry.
func (db *DB) commitError(ctx context.Context, err error) error {
	if errors.Is(err, sql.ErrTxDone) || (ctx.Err() != nil && err == ctx.Err()) {
		// database/sql rolled back (or refused to send COMMIT) because ctx
		// ended first: nothing was committed.
		return fmt.Errorf("racefree: commit transaction: %w", dialect.Wrap(dialect.ClassCanceled, errors.Join(err, ctx.Err())))
	}
	ce := db.d.Classify(err)
	if errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("racefree: commit transaction: %w", ce)
	}
	if ce.Code == "" || ce.Class.Outage() || ce.Class == dialect.ClassCanceled {
		return &CommitUnknownError{Err: ce}
	}
	return fmt.Errorf("racefree: commit transaction: %w", ce)
}

// resolveCommit asks the server what became of transaction id, whose
// COMMIT's answer was lost, on another connection: committed, and the
// attempt succeeded; rolled back, and it may run again; still open, and it
// asks again after a pause, until ctx ends or the time budget is spent;
// when the server cannot say, the outcome stays unknown. It asks on the
// outage scale for up to DefaultMaxElapsed, whatever the retry policy: the
// policy decides about attempts, and this is still the same attempt.
func (r *txRun) resolveCommit(ctx context.Context, id string, unknown *CommitUnknownError) error {
	start := time.Now()
	policy := backoff.Policy{Base: DefaultOutageBaseDelay, Max: DefaultOutageMaxDelay}
	for n := 1; ; n++ {
		state, err := r.resolver.TxStatus(ctx, r.db.pool, id)
		if err == nil {
			switch state {
			case dialect.TxCommitted:
				return nil
			case dialect.TxAborted:
				return &retrySafeError{fmt.Errorf("racefree: commit transaction: the server rolled the transaction back (its answer was lost: %w)", unknown.Err)}
			case dialect.TxStateUnknown:
				return unknown
			}
		}
		// Still open, or the question failed (the server may be down):
		// ask again.
		delay := policy.Delay(n)
		if time.Since(start)+delay > DefaultMaxElapsed || sleep(ctx, delay) != nil {
			return unknown
		}
	}
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
//
// In a transaction RunInTx began on an engine where a failed statement
// aborts the transaction (PostgreSQL), the transaction's first savepoint
// is never released: COMMIT or ROLLBACK ends it with everything else, and the
// round trip of its RELEASE is saved (a get-or-create that creates its row
// in a transaction of its own sends five statements, not six; one that
// lost a race, four after its read, not five). It is never touched again
// once fn is done, so nothing the caller does after it — savepoints of its
// own, nested in it, or a ROLLBACK TO an earlier one, which discards it —
// is disturbed; and since only one is left open per transaction, the
// nesting it adds stays one level deep. A transaction racefree did not
// begin (WrapTx) is committed by its owner, who may rely on the RELEASE:
// there every savepoint is released.
//
// In a transaction RunInTx began, a serialization failure or deadlock in
// fn dooms the transaction (tx.doomed): no ROLLBACK TO is sent, and
// RunInTx runs the whole transaction again whatever fn's caller makes of
// the error (txRun.fnErr).
func (tx *Tx) savepoint(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	tx.spSeq++
	name := "racefree_sp_" + strconv.Itoa(tx.spSeq)
	if _, err := tx.tx.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return tx.db.wrapErr("create savepoint", err)
	}
	// Left for COMMIT or ROLLBACK to end: only where every INSERT of a
	// transaction runs in a savepoint (a failed statement aborts the
	// transaction, PostgreSQL), which is where the round trip is paid.
	keep := tx.ownsCommit && !tx.keptSavepoint && tx.db.d.Features().Has(dialect.FailedStatementAbortsTx)
	tx.keptSavepoint = tx.keptSavepoint || keep
	rollback := func(ctx context.Context) error {
		_, err := tx.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
		if err == nil && !keep {
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
		if tx.ownsCommit && dooms(tx.db.d, classified) {
			// The whole transaction must run again — PostgreSQL's rule
			// for a serialization failure or deadlock; MySQL has already
			// rolled it back — and RunInTx will, whatever fn makes of
			// the error: a ROLLBACK TO would be a round trip for nothing.
			if tx.doomed == nil {
				tx.doomed = classified
			}
			return classified
		}
		if rbErr := rollback(context.WithoutCancel(ctx)); rbErr != nil {
			// After a deadlock MySQL has already rolled back the whole
			// transaction and the savepoint with it: the original error is
			// what matters, but the failed rollback is not hidden.
			return errors.Join(classified, fmt.Errorf("racefree: roll back to savepoint: %w", rbErr))
		}
		return classified
	}
	if keep {
		return nil
	}
	if _, err := tx.tx.Exec(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return tx.db.wrapErr("release savepoint", err)
	}
	return nil
}

// dooms reports whether err, met inside a transaction, means the whole
// transaction must run again: a serialization failure or a deadlock.
func dooms(d dialect.Dialect, err error) bool {
	switch d.Classify(err).Class {
	case dialect.ClassSerialization, dialect.ClassDeadlock:
		return true
	}
	return false
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
	case opts.VerifyCommit && !db.canResolveCommits():
		return fmt.Errorf("racefree: run transaction: %w: %s cannot look up a transaction's outcome (VerifyCommit); use RunOnce", ErrUnsupported, db.d.Server())
	}
	return nil
}

// canResolveCommits reports whether the engine can settle a lost COMMIT
// answer (TxOptions.VerifyCommit).
func (db *DB) canResolveCommits() bool {
	cr, ok := db.d.(dialect.CommitResolver)
	if !ok {
		return false
	}
	_, ok = cr.TxIDSQL()
	return ok
}
