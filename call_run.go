package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Running a planned call: the reads and inserts, the rule for a unique
// violation, and the transactions the lock and serializable strategies run
// in.

// readRow runs the lookup query on q.
func readRow[T any](ctx context.Context, c *call, q dialect.Querier, lock string) (T, bool, error) {
	query, args := c.selectSQL(lock)
	row, err := scanInto[T](c.codec, c.nativeQueryRow(ctx, q, query, args))
	if errors.Is(err, sql.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, c.db.wrapErr(c.verb, err)
	}
	return row, true, nil
}

// insertRow runs the INSERT on q (inside tx when tx is non-nil). With
// onConflict, where the engine has ON CONFLICT, a row that any unique
// index refuses is skipped rather than failing. created reports that the
// row was inserted; otherwise a unique index refused it, and violation is
// the engine's error when it raised one (nil when ON CONFLICT skipped the
// row). Any other error is returned, classified. Where a failed statement
// aborts the transaction (PostgreSQL), the INSERT runs in a savepoint.
func insertRow[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx, onConflict bool) (row T, created bool, violation *dialect.Error, err error) {
	if err := c.checkInsert(); err != nil {
		return row, false, nil, err
	}
	if err := c.beforeWrite(ctx); err != nil {
		return row, false, nil, err
	}
	query := c.insertSQL(onConflict)
	skipped, inserted := false, false
	do := func(ctx context.Context) error {
		if c.d.Features().Has(dialect.Returning) {
			row, err = scanInto[T](c.codec, c.nativeQueryRow(ctx, q, query, c.ivals))
			if errors.Is(err, sql.ErrNoRows) { // ON CONFLICT DO NOTHING did nothing
				skipped = true
				return nil
			}
			return err
		}
		// MySQL without RETURNING: the row just inserted is visible to
		// this session, in or out of a transaction.
		if _, err := q.Exec(ctx, query, c.ivals...); err != nil {
			return err
		}
		inserted = true
		var found bool
		row, found, err = readRow[T](ctx, c, q, "")
		skipped = !found // deleted at once by someone else: go round again
		return err
	}
	if tx != nil && c.d.Features().Has(dialect.FailedStatementAbortsTx) {
		err = tx.savepoint(ctx, do)
	} else {
		err = do(ctx)
	}
	if err != nil {
		ce := c.db.Classify(err)
		if ce.Class == dialect.ClassUniqueViolation {
			return row, false, ce, nil
		}
		err = fmt.Errorf("racefree: %s: %w", c.verb, ce)
		if tx != nil && onConflict && ce.Class == dialect.ClassSerialization && c.snapshotBlind(tx) {
			if iso, known := tx.Isolation(); known && iso == sql.LevelRepeatableRead {
				// ON CONFLICT met a row committed after the snapshot
				// (REPEATABLE READ has no other serialization failure):
				// a restart sees it at once.
				err = &restartNowError{err}
			}
		}
		if tx == nil && (inserted || ce.Class == dialect.ClassConnection) {
			// Outside a transaction the INSERT commits on its own: it did
			// (inserted), or it may have, cut off with no answer.
			err = &insertLostError{err: err, committed: inserted}
		}
		return row, false, nil, err
	}
	return row, !skipped, nil, nil
}

// insertLostError is the error of an autocommit INSERT that committed
// (committed) or may have (cut off with no answer), and whose row the
// call did not get: running the call again finds the row, and execute
// decides what it can say about `created`.
type insertLostError struct {
	err       error
	committed bool
}

func (e *insertLostError) Error() string { return e.err.Error() }
func (e *insertLostError) Unwrap() error { return e.err }

// ownIndex reports whether the unique violation ce is of the lookup's own
// index: the row it collided with had the lookup's values.
func (c *call) ownIndex(ce *dialect.Error) bool {
	return c.ix != nil && violatesIndex(c.t.Table, ce, c.lcols)
}

// createOrFind inserts the call's row and, when a unique index refuses
// it, reads the row the lookup names. This is the rule for every unique
// conflict, whichever index reports it (MariaDB names the first unique
// index in definition order, and PostgreSQL checks the indexes one by
// one, so another index may report a collision with the very row the
// lookup names): if the lookup's row is there, the call lost a race, and
// gets that row with created false; only if it is not is the violation
// returned, as the engine raised it. A conflict that ON CONFLICT DO
// NOTHING skipped carries no error, so the INSERT is tried once more
// without it, to learn what conflicted. A violation of the lookup's own
// index whose row is gone by the re-read means a concurrent delete won:
// the INSERT is tried again, up to maxVanished times.
//
// The re-read follows the isolation level (see rereadLock); in a snapshot
// that cannot see the winner (PostgreSQL REPEATABLE READ or SERIALIZABLE)
// the call fails with ErrSerialization so that the whole transaction
// restarts and sees it.
func createOrFind[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx) (row T, created bool, err error) {
	return createOr(ctx, c, q, tx, func(ctx context.Context) (T, bool, error) {
		return readRow[T](ctx, c, q, c.rereadLock(tx))
	})
}

// createOr is createOrFind with the step after a conflict given: find
// returns the lookup's row if it exists (UpdateOrCreate updates it).
func createOr[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx, find func(context.Context) (T, bool, error)) (row T, created bool, err error) {
	onConflict := true
	for range maxVanished {
		if h := testHookBeforeInsert.Load(); h != nil {
			(*h)()
		}
		row, created, violation, err := insertRow[T](ctx, c, q, tx, onConflict)
		if err != nil || created {
			return row, created, err
		}
		if h := testHookBeforeReread.Load(); h != nil {
			(*h)()
		}
		row, found, err := find(ctx)
		if err != nil {
			return row, false, err
		}
		if found {
			c.observeLostRace(ctx, violation)
			return row, false, nil
		}
		switch {
		case violation == nil:
			onConflict = false // ask the engine what conflicted
		case !c.ownIndex(violation):
			return row, false, fmt.Errorf("racefree: %s: %w", c.verb, violation)
		case c.snapshotBlind(tx):
			return row, false, c.errSnapshotBlind()
		}
		// The row the INSERT collided with was deleted before the
		// re-read: try again.
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", c.verb, ErrRowVanished, maxVanished)
}

// freshRead is how a statement in tx (nil: autocommit) reads the rows
// committed after the transaction's snapshot, such as the winner of an
// insert race: the clause to add to the SELECT, and ok false when no
// statement of tx can (only a restart can). The dialect knows; without a
// FreshReader only READ COMMITTED reads them.
func (c *call) freshRead(tx *Tx) (clause string, ok bool) {
	if tx == nil {
		return "", true
	}
	iso, known := tx.Isolation()
	if fr, ok := c.d.(dialect.FreshReader); ok {
		return fr.FreshRead(iso, known)
	}
	return "", dialect.ReadsCommitted(iso, known, false)
}

// rereadLock is the clause of the re-read after a lost race in tx: a
// snapshot that predates the winner hides its row from a plain SELECT, and
// on some engines a locking read sees the latest committed version.
func (c *call) rereadLock(tx *Tx) string {
	clause, _ := c.freshRead(tx)
	return clause
}

// snapshotBlind reports whether no statement of tx can see the winner of
// an insert race (PostgreSQL REPEATABLE READ or SERIALIZABLE, or an unknown
// level), so that only a restart of the whole transaction can.
func (c *call) snapshotBlind(tx *Tx) bool {
	_, ok := c.freshRead(tx)
	return !ok
}

// errSnapshotBlind is returned, as a serialization failure, when the row
// that won the race cannot be seen by the transaction's snapshot.
// The winner has committed (its row collided with ours), so a restart
// sees it at once: no pause is needed (restartNowError).
func (c *call) errSnapshotBlind() error {
	return &restartNowError{fmt.Errorf("racefree: %s: %w", c.verb, dialect.Wrap(dialect.ClassSerialization,
		errors.New("the row that won the insert race is not visible to this transaction's snapshot: restart the transaction")))}
}

// execute executes a planned get-or-create with the resolved strategy.
//
// On the pool (outside a caller's transaction and connection) a call
// whose statement was cut off by a lost connection is run again, within
// Options.Retry: a get-or-create is idempotent, so a new
// run settles what the lost one left — it finds the row, or creates it.
// What it says about `created` then is exact, or says it is not: when an
// INSERT of this call committed without an answer reaching the call, or
// may have, and the new run finds the row, the call returns the row with
// created false and a *CreatedUnknownError (the row may be this call's or
// a concurrent call's); when the new run creates the row, the lost INSERT
// had not committed (the lookup's unique index, or the lock, would have
// stopped the new one) and created is true.
func execute[T any](ctx context.Context, c *call, insertFirst bool) (row T, created bool, err error) {
	var lost recovery
	switch c.strat {
	case StrategyConstraint:
		if c.h.tx != nil {
			row, created, err = constraintPath[T](ctx, c, c.h.q, c.h.tx, insertFirst)
			break
		}
		// Outside a transaction every statement commits on its own, so
		// the whole sequence can be run again after a deadlock (MySQL gap
		// locks), SQLITE_BUSY or a lost connection. The first attempt
		// runs without the retry loop's closure: it is the hit path.
		start := time.Now()
		row, created, err = constraintPath[T](ctx, c, c.h.q, nil, insertFirst)
		if err != nil && c.h.conn == nil {
			err = c.db.retryAfter(ctx, c.opts.Retry, start, lost.note(c, err), func(ctx context.Context) error {
				var err error
				row, created, err = constraintPath[T](ctx, c, c.h.q, nil, insertFirst)
				return lost.note(c, err)
			})
		}
	case StrategyLock, StrategySerializable:
		row, created, err = lockedPath[T](ctx, c)
		if err != nil && c.h.onPool() {
			// RunInTx has run again what did not commit; what is left is
			// a COMMIT whose answer was lost, which running the call
			// again settles.
			err = c.db.retryAfter(ctx, c.opts.Retry, time.Now(), lost.note(c, err), func(ctx context.Context) error {
				var err error
				row, created, err = lockedPath[T](ctx, c)
				return lost.note(c, err)
			})
		}
	}
	if err == nil && !created {
		switch {
		case lost.created:
			created = true
		case lost.doubt != nil:
			err = &CreatedUnknownError{Verb: c.verb, Table: c.t.Name, Err: lost.doubt}
		}
	}
	if err == nil && c.opts.Adaptive {
		c.db.hitStat(c.statKey()).observe(!created)
	}
	return row, created, err
}

// recovery is what a get-or-create run again after a lost connection
// knows about its earlier attempts' INSERTs. The zero value knows of none.
type recovery struct {
	doubt   error // an INSERT may have committed: the error that cut it off
	created bool  // an INSERT committed, its row unread
}

// note looks at an attempt's error: a statement cut off by a lost
// connection, or a COMMIT whose answer was lost, is marked safe to run
// again (retrySafeError), and an INSERT that committed or may have is
// remembered. Other errors are returned as they are.
func (r *recovery) note(c *call, err error) error {
	if err == nil {
		return nil
	}
	var il *insertLostError
	switch {
	case errors.As(err, new(*RetryError)):
		return err // a budget spent inside (RunInTx's) stays spent
	case errors.As(err, &il):
		if il.committed {
			r.created = true
		} else if r.doubt == nil {
			r.doubt = il.err
		}
	case errors.Is(err, ErrCommitUnknown):
		if r.doubt == nil {
			r.doubt = err
		}
	case c.db.d.Classify(err).Class != dialect.ClassConnection:
		return err
	}
	return &retrySafeError{err}
}

// constraintPath is the constraint strategy: read (unless insertFirst, or
// the row could not be inserted anyway), then createOrFind.
func constraintPath[T any](ctx context.Context, c *call, q dialect.Querier, tx *Tx, insertFirst bool) (row T, created bool, err error) {
	if !insertFirst || len(c.missing) > 0 || c.lazy {
		// A call that cannot create the row (a required column missing)
		// reads first even when asked to insert first: a hit is an
		// answer. So does one with a Lazy default, never computed for a
		// row that exists.
		row, found, err := readRow[T](ctx, c, q, "")
		if err != nil || found {
			return row, false, err
		}
	}
	return createOrFind[T](ctx, c, q, tx)
}

// lockedPath is the lock and serializable strategies: inside a
// transaction (the caller's, or one begun here), take the named lock (lock
// strategy), then read and insert.
func lockedPath[T any](ctx context.Context, c *call) (row T, created bool, err error) {
	body := func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedBody[T](ctx, c, tx)
		return err
	}
	if c.h.tx != nil {
		if err := c.checkCallerTx(ctx, c.h.tx); err != nil {
			return row, false, err
		}
		err = body(ctx, c.h.tx)
		return row, created, err
	}
	txo := TxOptions{Retry: c.opts.Retry}
	switch {
	case c.d.Features().Has(dialect.SingleWriter):
		// One level only, and one writer at a time: nothing to choose.
	case c.strat == StrategySerializable:
		txo.Isolation = sql.LevelSerializable
	case c.strat == StrategyLock:
		// READ COMMITTED: each statement sees what was committed before it
		// began, so the read after the lock sees the previous holder's
		// row; and on MySQL no gap locks, which would make different keys
		// deadlock.
		txo.Isolation = sql.LevelReadCommitted
	}
	if c.strat == StrategyLock {
		if err := prepareLocks(ctx, c.db); err != nil {
			return row, false, err
		}
	}
	err = RunInTx(ctx, c.h.executor(), txo, body)
	return row, created, err
}

// lockedBody is one attempt of the lock or serializable strategy in tx.
func lockedBody[T any](ctx context.Context, c *call, tx *Tx) (row T, created bool, err error) {
	if c.strat == StrategyLock {
		if err := lockForGetOrCreate(ctx, tx, c.lockName()); err != nil {
			return row, false, err
		}
	}
	row, found, err := readRow[T](ctx, c, tx.tx, c.rereadLock(tx))
	if err != nil || found {
		return row, false, err
	}
	// Nobody else can be inserting this lookup now (lock), or the engine
	// will fail one of us (serializable); a conflict means a writer that
	// bypasses racefree, or another unique index: createOrFind tells.
	return createOrFind[T](ctx, c, tx.tx, tx)
}

// checkCallerTx refuses a caller's transaction in which the strategy
// cannot be correct.
func (c *call) checkCallerTx(ctx context.Context, tx *Tx) error {
	if c.d.Features().Has(dialect.SingleWriter) {
		return nil // one writer at a time, serializable always
	}
	iso, known := tx.Isolation()
	if !known || iso == sql.LevelDefault {
		level, err := c.currentIsolation(ctx, tx)
		if err != nil {
			return err
		}
		iso, known = level, level != sql.LevelDefault
	}
	switch c.strat {
	case StrategySerializable:
		if iso != sql.LevelSerializable {
			return fmt.Errorf("racefree: %s: %w: StrategySerializable needs a SERIALIZABLE transaction, this one is %v",
				c.verb, ErrStrategyUnavailable, iso)
		}
	case StrategyLock:
		// The read under the lock must see the previous holder's row. A
		// snapshot taken before the lock was granted does not (PostgreSQL
		// REPEATABLE READ and SERIALIZABLE: the transaction's first
		// statement takes it), and then nothing stops the duplicate.
		// SERIALIZABLE's conflict detection does not save it: it only
		// compares SERIALIZABLE transactions, and the previous holder may
		// have run at READ COMMITTED (measured: duplicates beside
		// lock-strategy calls on the pool).
		fresh := dialect.ReadsCommitted(iso, known, false)
		if fr, ok := c.d.(dialect.FreshReader); ok {
			_, fresh = fr.FreshRead(iso, known)
		}
		if !fresh {
			return fmt.Errorf("racefree: %s: %w: the lock strategy cannot work in a %v transaction on %s (its snapshot predates the lock); use READ COMMITTED, SERIALIZABLE or a unique index",
				c.verb, ErrStrategyUnavailable, iso, c.d.Server())
		}
	}
	return nil
}

// currentIsolation asks the server which isolation level tx runs at, or
// answers sql.LevelDefault when the dialect cannot tell.
func (c *call) currentIsolation(ctx context.Context, tx *Tx) (sql.IsolationLevel, error) {
	ir, ok := c.d.(dialect.IsolationReader)
	if !ok {
		return sql.LevelDefault, nil
	}
	level, err := ir.CurrentIsolation(ctx, tx.tx)
	if err != nil {
		return 0, c.db.wrapErr(c.verb+": read isolation level", err)
	}
	return level, nil
}

// executor turns a handle back into the Executor it came from.
func (h handle) executor() Executor {
	switch {
	case h.tx != nil:
		return h.tx
	case h.conn != nil:
		return h.conn
	}
	return h.db
}

// Test hooks, set only by tests (getorcreate_export_test.go) to force the
// interleavings of a lost race: a winner committing between our read and
// our INSERT, and the winner's row deleted before our re-read.
var testHookBeforeInsert, testHookBeforeReread atomic.Pointer[func()]

// inTx runs fn in the caller's transaction, or in one begun here with
// retries. The lock strategy's transaction runs at READ COMMITTED, the
// serializable strategy's at SERIALIZABLE; the constraint strategy's at the
// server's default, which its locking reads make safe.
func (c *call) inTx(ctx context.Context, fn TxFunc) error {
	if c.h.tx != nil {
		if c.strat != StrategyConstraint {
			if err := c.checkCallerTx(ctx, c.h.tx); err != nil {
				return err
			}
		}
		return fn(ctx, c.h.tx)
	}
	txo := TxOptions{Retry: c.opts.Retry}
	if !c.d.Features().Has(dialect.SingleWriter) {
		switch c.strat {
		case StrategySerializable:
			txo.Isolation = sql.LevelSerializable
		case StrategyLock, StrategyConstraint:
			txo.Isolation = sql.LevelReadCommitted
		}
	}
	if c.strat == StrategyLock {
		if err := prepareLocks(ctx, c.db); err != nil {
			return err
		}
	}
	return RunInTx(ctx, c.h.executor(), txo, fn)
}
