package racefree

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
	"github.com/racefree/racefree/session"
)

// SessionLock is a named lock held by one database session: a connection
// pinned from the pool for as long as the lock is held. It excludes every
// other session that locks the same name, in any process on any machine,
// and outlives transactions. It is released by Release, and by the server
// when the session ends for any reason — the process exits or is killed,
// the network fails, the server restarts — so a crashed holder never
// blocks the others for long. After such a failure the holder no longer has
// the lock, and nothing tells it until Check or Release: code that must not
// run without the lock should Check before acting, or better, use a
// [Lease] and check its fencing token in the guarded write.
//
// A SessionLock is safe for concurrent use; Release is idempotent.
type SessionLock struct {
	db   *DB
	sl   dialect.SessionLocker
	name string
	at   time.Time // when the lock was granted

	mu   sync.Mutex   // guards conn
	conn session.Conn // nil once unlocked or discarded
}

// AcquireSessionLock takes the named lock name on a connection of its own and
// holds it until Release. ctx governs the wait, as opts say (see
// [LockOptions]); the lock itself is not bound to ctx.
//
//   - PostgreSQL: pg_advisory_lock on the same 64-bit key as [LockNamed],
//     so a session lock and a transaction lock of one name exclude each
//     other there. Try: pg_try_advisory_lock; Timeout: lock_timeout.
//   - MySQL/MariaDB: GET_LOCK, with names longer than 64 characters (or
//     not valid UTF-8) hashed to fit; see internal/lockkey. Names compare
//     case-insensitively on some servers: "A" and "a" may be one lock.
//     GET_LOCK and LockNamed's lock table are different locks.
//   - TiDB: GET_LOCK too, which excludes across the whole cluster. Its
//     shortest wait is one second, so a Try waits a second before it
//     fails, and a Timeout is at least a second. Under contention TiDB's
//     GET_LOCK may give up with "pessimistic lock retry limit reached",
//     holding nothing: AcquireSessionLock then asks again within the wait (a Try
//     fails with ErrLockNotAcquired).
//   - MariaDB Galera and CockroachDB: ErrLockUnsupported. GET_LOCK on a
//     Galera node excludes only sessions on that node, and CockroachDB has
//     no advisory locks: use [AcquireLease].
//   - SQLite: ErrLockUnsupported. Its only lock is the database's write
//     lock, which a session cannot hold without stopping every writer,
//     its own other connections included: use LockNamed in a write
//     transaction, or AcquireLease.
//
// A connection whose lock state is in doubt — the lock statement failed,
// ctx ended while it ran, the unlock failed — is discarded, never returned
// to the pool, so that no pooled connection ever holds a lock nobody
// knows about. Closing it makes the server release whatever it held.
func AcquireSessionLock(ctx context.Context, db *DB, name string, opts LockOptions) (*SessionLock, error) {
	const verb = "acquire session lock"
	if db == nil || db.pool == nil {
		return nil, fmt.Errorf("racefree: %s: %w", verb, errNilExecutor)
	}
	if err := validateLockName(verb, name); err != nil {
		return nil, err
	}
	d := db.d
	f := d.Features()
	sl, ok := d.(dialect.SessionLocker)
	switch {
	case f.Has(dialect.NodeLocalNamedLocks):
		return nil, unsupportedErr(verb, name, "on %s a named lock excludes only sessions on the same node; use AcquireLease", d.Server())
	case f.Has(dialect.SingleWriter):
		return nil, unsupportedErr(verb, name, "%s has no session lock (its one lock, the write lock, would stop every writer); "+
			"use LockNamed in a write transaction, or AcquireLease", d.Server())
	case !ok || !f.Has(dialect.AdvisoryLocks):
		return nil, unsupportedErr(verb, name, "%s has no advisory locks; use AcquireLease", d.Server())
	}
	start := time.Now()
	l, err := lockSession(ctx, db, sl, name, opts)
	if err != nil && db.sessionGone(ctx, err) {
		// The session died under the lock statement, and the server
		// released whatever it had taken with it: nothing is held, so
		// trying again on another connection is safe. An outage is waited
		// out as everywhere (ErrUnavailable).
		err = db.retry(ctx, nil, func(ctx context.Context) error {
			var err error
			l, err = lockSession(ctx, db, sl, name, opts)
			if err != nil && db.sessionGone(ctx, err) {
				return &retrySafeError{err}
			}
			return err
		})
	}
	db.observeLock(ctx, lockKindSession, name, start, err)
	return l, err
}

// sessionGone reports whether err, from taking a session lock, says that
// the session died (or never began), ctx still running: the connection
// holds nothing then.
func (db *DB) sessionGone(ctx context.Context, err error) bool {
	return ctx.Err() == nil && db.d.Classify(err).Class.Outage()
}

// lockSession is AcquireSessionLock once it is known the engine has session
// locks.
func lockSession(ctx context.Context, db *DB, sl dialect.SessionLocker, name string, opts LockOptions) (*SessionLock, error) {
	const verb = "acquire session lock"
	d := db.d
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, db.wrapErr(verb+": take connection", err)
	}
	l := &SessionLock{db: db, sl: sl, name: name, conn: conn}
	got, err := sl.LockSession(ctx, conn, lockKeyOf(name), opts.Wait.dialect())
	if err != nil {
		// The statement may have taken the lock before it failed (a
		// session lock survives the statement's error): in doubt.
		l.discard()
		if errors.Is(d.Classify(err), ErrLockNotAcquired) {
			return nil, notAcquired(verb, name, opts.Wait, d.Classify(err))
		}
		return nil, fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), db.classifyCtx(ctx, err))
	}
	if got {
		// A lock dropped without Release must not pin a connection, holding
		// the lock, forever: when l is collected its connection is closed,
		// never pooled, which releases the lock. After Release the
		// connection is done and this does nothing. Not something to rely
		// on: collection may come late or never.
		runtime.AddCleanup(l, discardConn, conn)
	}
	if !got {
		conn.Release() // the server said no: the connection holds nothing
		return nil, notAcquired(verb, name, opts.Wait, nil)
	}
	l.at = time.Now()
	return l, nil
}

// Name returns the lock's name as given to AcquireSessionLock.
func (l *SessionLock) Name() string { return l.name }

// Check reports whether the lock is still held: nil if so, ErrLockLost if
// its session ended or the lock was released. It asks the server, so it
// also notices a connection that died quietly; such a connection is
// discarded.
func (l *SessionLock) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return fmt.Errorf("racefree: check session lock %q: %w", lockkey.Label(l.name, 64), ErrLockLost)
	}
	held, err := l.sl.SessionLockHeld(ctx, l.conn, lockKeyOf(l.name))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("racefree: check session lock %q: %w", lockkey.Label(l.name, 64), l.db.classifyCtx(ctx, err))
		}
		l.discardLocked()
		return fmt.Errorf("racefree: check session lock %q: %w (%w)", lockkey.Label(l.name, 64), ErrLockLost, l.db.d.Classify(err))
	}
	if !held {
		l.discardLocked()
		return fmt.Errorf("racefree: check session lock %q: %w", lockkey.Label(l.name, 64), ErrLockLost)
	}
	return nil
}

// sessionLockCheck is how often Do asks the server whether the lock is
// still held.
const sessionLockCheck = time.Second

// Do runs fn while watching the lock: a goroutine asks the server every
// second whether the session still holds it, and cancels fn's context,
// with a cause matching ErrLockLost, the moment it does not — its
// connection died (the network, a server restart, the session killed) or
// the check could not be answered within a second, in which case the
// connection is closed so that the server releases the lock, if it still
// had it, to nobody's surprise. fn must not Release the lock. Do returns
// fn's error, joined with ErrLockLost when the lock was lost (fn's context
// error says so too, through context.Cause); it does not unlock: call
// Release after. ctx governs fn and the checks; Do returns only once its
// checking goroutine has stopped.
//
// Between two checks the lock may be gone for up to a second before fn
// hears of it: work that must never run unprotected checks a Lease's
// fencing token in the write it guards.
func (l *SessionLock) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return inputError("keep session lock", "nil function")
	}
	if err := l.Check(ctx); err != nil {
		return err
	}
	fnCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- l.watch(fnCtx, stop, cancel) }()
	err := fn(fnCtx)
	close(stop)
	if lost := <-done; lost != nil {
		return errors.Join(err, lost)
	}
	return err
}

// watch checks the lock until stop closes or ctx ends, and cancels with
// the reason when it is lost, which it also returns.
func (l *SessionLock) watch(ctx context.Context, stop <-chan struct{}, cancel context.CancelCauseFunc) error {
	t := time.NewTicker(sessionLockCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil // fn's own context ended: not a loss
		case <-t.C:
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), sessionLockCheck)
		err := l.Check(cctx)
		ccancel()
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrLockLost) {
			// Not answered in time: nobody can vouch for the lock now.
			// Closing the session makes the server release it.
			l.discard()
			err = fmt.Errorf("racefree: keep session lock %q: %w: the check was not answered (%w)", lockkey.Label(l.name, 64), ErrLockLost, err)
		}
		cancel(err)
		return err
	}
}

// Release releases the lock and returns the connection to the pool. If the
// release cannot be confirmed the connection is discarded instead, which
// makes the server release the lock. It returns ErrLockLost if the lock
// was found already gone (its session had died: whatever ran since then
// ran unprotected), and nil after the first successful call.
func (l *SessionLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	// The release must complete even if ctx is what ended the caller's
	// work; it is one short statement.
	released, err := l.sl.UnlockSession(context.WithoutCancel(ctx), l.conn, lockKeyOf(l.name))
	switch {
	case err != nil:
		l.discardLocked()
		if errors.Is(l.db.d.Classify(err), ErrConnection) || errors.Is(l.db.d.Classify(err), ErrNotSent) {
			return fmt.Errorf("racefree: unlock session lock %q: %w (%w)", lockkey.Label(l.name, 64), ErrLockLost, l.db.d.Classify(err))
		}
		// The connection is closed, so the server releases the lock.
		return nil
	case !released:
		l.discardLocked()
		return fmt.Errorf("racefree: unlock session lock %q: %w", lockkey.Label(l.name, 64), ErrLockLost)
	}
	err = l.conn.Release()
	l.conn = nil
	l.db.observeRelease(ctx, lockKindSession, l.name, l.at)
	return err
}

// discard closes the connection without returning it to the pool.
func (l *SessionLock) discard() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.discardLocked()
}

// discardLocked is discard with l.mu held. Returning driver.ErrBadConn from
// Raw makes database/sql close the driver connection instead of pooling
// it; closing the session releases its locks on the server.
func (l *SessionLock) discardLocked() {
	if l.conn == nil {
		return
	}
	discardConn(l.conn)
	l.conn = nil
}

// discardConn closes c for good where its adapter can (so that the server
// releases what the session holds), and releases it otherwise. It is safe
// on a connection already released.
func discardConn(c session.Conn) {
	if d, ok := c.(session.Discarder); ok {
		_ = d.Discard()
		return
	}
	_ = c.Release()
}
