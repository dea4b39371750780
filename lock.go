package racefree

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

// LockOptions say how long a lock call waits for a lock another session
// holds. The zero value waits until ctx ends.
//
// On MySQL/MariaDB the server's innodb_lock_wait_timeout (50 s by default)
// would end a wait earlier; racefree waits again after it fires, so the
// zero value really waits until ctx ends. On PostgreSQL a lock_timeout set
// on the role, database or session still applies and returns
// ErrLockTimeout. On SQLite a wait for the write lock is SQLite's busy
// wait, which does not watch ctx: racefree waits in slices of 100 ms and
// checks ctx between them.
type LockOptions struct {
	// Timeout, if positive, bounds the wait: a lock not granted within it
	// returns an error matching ErrLockTimeout, and the transaction stays
	// usable. MySQL/MariaDB count lock waits in whole seconds, so a timeout
	// there is rounded up to the next second.
	Timeout time.Duration
	// Try fails at once with ErrLockNotAcquired instead of waiting when
	// another session holds the lock. It overrides Timeout. (MySQL before
	// 8.0/MariaDB before 10.3 cannot refuse at once and wait one second;
	// so does TiDB.)
	Try bool
}

// wait is opts as a dialect reads them.
func (o LockOptions) wait() dialect.Wait { return dialect.Wait{Try: o.Try, Timeout: o.Timeout} }

// lockTimeoutErr is the ErrLockTimeout-class error racefree returns when a
// wait it bounded itself ran out.
func lockTimeoutErr(verb, name string, err error) error {
	var ce *dialect.Error
	if !errors.As(err, &ce) || ce.Class != dialect.ClassLockTimeout {
		err = dialect.Wrap(dialect.ClassLockTimeout, err)
	}
	return fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), err)
}

// lockNotAcquiredErr names the lock a Try did not get.
func lockNotAcquiredErr(verb, name string) error {
	return fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), ErrLockNotAcquired)
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
		return fmt.Errorf("%w: %s cannot bound a lock wait (Try, Timeout)", ErrLockUnsupported, tx.db.d.Server())
	}
	return fn(ctx)
}

// takeLock runs lock, statements that take a lock, waiting as opts say,
// and turns the outcome into racefree's lock errors, naming the lock:
// ErrLockNotAcquired when Try found it held, an ErrLockTimeout-class error
// when the Timeout ran out, the classified error otherwise.
func (tx *Tx) takeLock(ctx context.Context, verb, name string, opts LockOptions, lock func(context.Context) error) error {
	return tx.lockOutcome(verb, name, opts, tx.waitForLocks(ctx, opts.wait(), lock))
}

// lockOutcome is takeLock's verdict on the error of a lock wait.
func (tx *Tx) lockOutcome(verb, name string, opts LockOptions, err error) error {
	if err != nil && opts.Try && tx.db.waitRanOut(err) {
		return lockNotAcquiredErr(verb, name)
	}
	return tx.lockResult(verb, name, err)
}

// lockResult turns the error of a lock call into racefree's lock errors,
// naming the lock.
func (tx *Tx) lockResult(verb, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLockTimeout):
		return lockTimeoutErr(verb, name, err)
	case tx.db.waitRanOut(err):
		return lockTimeoutErr(verb, name, tx.db.d.Classify(err))
	case errors.Is(err, ErrLockNotAcquired), errors.Is(err, ErrLockUnsupported):
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
	return errors.Is(err, ErrLockTimeout) || errors.Is(db.d.Classify(err), ErrLockTimeout)
}

// undefined reports whether err says that a table (or, with columns, a
// column) the statement named does not exist, as the dialect tells.
func (db *DB) undefined(err error, columns bool) bool {
	uc, ok := db.d.(dialect.UndefinedChecker)
	return ok && err != nil && (uc.UndefinedTable(err) || columns && uc.UndefinedColumn(err))
}
