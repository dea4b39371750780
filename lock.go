package racefree

import (
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
	// 8.0/MariaDB before 10.3 cannot refuse at once and wait one second.)
	Try bool
}

// ErrLockNotAcquired is returned by a lock call with LockOptions.Try when
// another session holds the lock. Nothing was locked and the transaction
// is still usable. It is not a database error class: RunInTx does not retry
// it.
var ErrLockNotAcquired = errors.New("racefree: lock not acquired: another session holds it")

// ErrLockUnsupported is returned when the engine cannot take the lock asked
// for in the place it was asked for, for example a named lock in a
// read-only SQLite transaction, or FOR SHARE on a server without it. It is
// never silently ignored.
var ErrLockUnsupported = errors.New("racefree: lock not supported here")

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

// validateLockName refuses the one name racefree cannot lock meaningfully:
// the empty one, which is almost always a missing value. Every other name,
// of any length or content, is hashed to a safe key.
func validateLockName(verb, name string) error {
	if name == "" {
		return fmt.Errorf("racefree: %s: empty lock name", verb)
	}
	return nil
}
