package racefree

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

// Wait says how long a call waits for a lock or a lease that another
// session holds. Every call that can wait takes one (in LockOptions,
// RowLockOptions and LeaseOptions), and every one of them that does not
// get the lock as its Wait allows returns an error matching
// ErrLockNotAcquired. The zero value waits until ctx ends.
//
// On MySQL/MariaDB the server's innodb_lock_wait_timeout (50 s by default)
// would end a wait earlier; racefree waits again after it fires, so the
// zero value really waits until ctx ends. On PostgreSQL a lock_timeout set
// on the role, database or session still applies, and its expiry matches
// ErrLockNotAcquired too. On SQLite a wait for the write lock is SQLite's
// busy wait, which does not watch ctx: racefree waits in slices of 100 ms
// and checks ctx between them.
type Wait struct {
	// Timeout, if positive, bounds the wait: a lock not granted within it
	// is not acquired, and the transaction stays usable. MySQL/MariaDB
	// count lock waits in whole seconds, so a timeout there is rounded up
	// to the next second.
	Timeout time.Duration
	// Try takes the lock only if it is free: held by another session, it
	// is not acquired, at once. (MySQL before 8.0, MariaDB before 10.3
	// and TiDB cannot refuse at once: they wait one second.) It cannot be
	// combined with a Timeout.
	Try bool
}

// check refuses a Wait that cannot be honoured: a negative Timeout, or a
// Timeout with Try.
func (w Wait) check(verb string) error {
	switch {
	case w.Timeout < 0:
		return inputError(verb, "negative wait timeout %v", w.Timeout)
	case w.Try && w.Timeout > 0:
		return inputError(verb, "a wait cannot both Try (not wait at all) and have a Timeout (%v)", w.Timeout)
	}
	return nil
}

// dialect is w as a dialect reads it.
func (w Wait) dialect() dialect.Wait { return dialect.Wait{Try: w.Try, Timeout: w.Timeout} }

// String says how w waited, for the error of a lock not granted: "at
// once" (Try), "within 2s" (a Timeout), and for the zero value, which
// waits until ctx ends and so fails only when a lock timeout of the
// server's fires first, "before the server's lock timeout".
func (w Wait) String() string {
	switch {
	case w.Try:
		return "at once"
	case w.Timeout > 0:
		return "within " + w.Timeout.String()
	}
	return "before the server's lock timeout"
}

// LockOptions configure the calls that take a lock: LockNamed, LockTable
// and AcquireSessionLock. The zero value waits until ctx ends.
type LockOptions struct {
	// Wait says how long to wait for a lock another session holds.
	Wait Wait
}

// notAcquired is the error of a lock call whose lock was not granted as w
// allowed: it names the lock and how long the call waited, and matches
// ErrLockNotAcquired and, when the server said so, cause's class.
func notAcquired(verb, name string, w Wait, cause error) error {
	return notGranted(fmt.Sprintf("%s %q", verb, lockkey.Label(name, 64)), w, cause)
}

// notGranted is notAcquired for a call that what already names.
func notGranted(what string, w Wait, cause error) error {
	if cause == nil || !errors.Is(cause, ErrLockNotAcquired) {
		cause = dialect.Wrap(dialect.ClassLockNotAcquired, orHeld(cause))
	}
	return fmt.Errorf("racefree: %s: not granted %v: %w", what, w, cause)
}

// orHeld is err, or the plain reason a lock is not granted when there is
// no error to tell it.
func orHeld(err error) error {
	if err == nil {
		return errors.New("another session holds it")
	}
	return err
}

// unsupportedErr says why the engine cannot take the lock called name.
func unsupportedErr(verb, name, why string, args ...any) error {
	return fmt.Errorf("racefree: %s %q: %w: %s", verb, lockkey.Label(name, 64), ErrLockUnsupported, fmt.Sprintf(why, args...))
}

// validateLockName refuses the one name racefree cannot lock meaningfully:
// the empty one, which is almost always a missing value. Every other name,
// of any length or content, is hashed to a safe key.
func validateLockName(verb, name string) error {
	if name == "" {
		return fmt.Errorf("racefree: %s: empty lock name", verb)
	}
	return nil
}

// lockKeyOf is the lock called name as a dialect takes it.
func lockKeyOf(name string) dialect.LockKey {
	return dialect.LockKey{Name: name, Key: lockkey.Key64(name)}
}

// lockingTx is tx as a dialect sees it while taking a lock: it runs
// statements, and runs part of itself in a savepoint when the dialect
// needs one to keep tx usable after a wait that ran out.
type lockingTx struct{ *Tx }

var _ dialect.LockTx = lockingTx{}

// Savepoint runs fn in a savepoint of tx.
func (t lockingTx) Savepoint(ctx context.Context, fn func(context.Context) error) error {
	return t.Tx.savepoint(ctx, fn)
}

// waitForLocks runs fn, whose statements may wait for locks, with the
// waits bounded as w says, by the dialect. An engine that cannot bound a
// wait runs fn only when w does not ask it to.
func (tx *Tx) waitForLocks(ctx context.Context, w dialect.Wait, fn func(context.Context) error) error {
	if lw, ok := tx.db.d.(dialect.LockWaiter); ok {
		return lw.WaitForLocks(ctx, lockingTx{tx}, w, fn)
	}
	if w.Bounded() {
		return fmt.Errorf("%w: %s cannot bound a lock wait (Wait.Try, Wait.Timeout)", ErrLockUnsupported, tx.db.d.Server())
	}
	return fn(ctx)
}

// takeLock runs lock, statements that take a lock, waiting as w says,
// and turns the outcome into racefree's lock errors, naming the lock: a
// wait that ran out (Try, a Timeout, the server's lock timeout) matches
// ErrLockNotAcquired; other errors are classified.
func (tx *Tx) takeLock(ctx context.Context, verb, name string, w Wait, lock func(context.Context) error) error {
	return tx.lockOutcome(verb, name, w, tx.waitForLocks(ctx, w.dialect(), lock))
}

// lockOutcome turns the error of a lock call into racefree's lock errors,
// naming the lock.
func (tx *Tx) lockOutcome(verb, name string, w Wait, err error) error {
	switch {
	case err == nil:
		return nil
	case tx.db.waitRanOut(err):
		return notAcquired(verb, name, w, tx.db.classified(err))
	case errors.Is(err, ErrLockUnsupported), errors.Is(err, ErrInvalidInput):
		return err
	}
	return fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), tx.db.classified(err))
}

// classified returns err classified: as it is when a dialect has already
// given it a class (one the driver's own error would hide), else as the
// dialect classifies it.
func (db *DB) classified(err error) error {
	var ce *dialect.Error
	if errors.As(err, &ce) && ce.Class != dialect.ClassOther {
		return err
	}
	return db.d.Classify(err)
}

// waitRanOut reports whether err is a lock wait that ran out: the
// server's, or one a dialect bounded and classified itself.
func (db *DB) waitRanOut(err error) bool {
	return errors.Is(err, ErrLockNotAcquired) || errors.Is(db.d.Classify(err), ErrLockNotAcquired)
}

// undefined reports whether err says that a table (or, with columns, a
// column) the statement named does not exist, as the dialect tells.
func (db *DB) undefined(err error, columns bool) bool {
	uc, ok := db.d.(dialect.UndefinedChecker)
	return ok && err != nil && (uc.UndefinedTable(err) || columns && uc.UndefinedColumn(err))
}
