package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
	"github.com/racefree/racefree/session"
)

// ErrLockLost means a session lock is no longer held: its connection died
// (the server released the lock then) or something else released it.
var ErrLockLost = errors.New("racefree: lock lost: its session ended")

// SessionLock is a named lock held by one database session: a connection
// pinned from the pool for as long as the lock is held. It excludes every
// other session that locks the same name, in any process on any machine,
// and outlives transactions. It is released by Unlock, and by the server
// when the session ends for any reason — the process exits or is killed,
// the network fails, the server restarts — so a crashed holder never
// blocks the others for long. After such a failure the holder no longer has
// the lock, and nothing tells it until Held or Unlock: code that must not
// run without the lock should check Held before acting, or better, use a
// [Lease] and check its fencing token in the guarded write.
//
// A SessionLock is safe for concurrent use; Unlock is idempotent.
type SessionLock struct {
	db   *DB
	name string

	mu   sync.Mutex   // guards conn
	conn session.Conn // nil once unlocked or discarded
}

// LockSession takes the named lock name on a connection of its own and
// holds it until Unlock. ctx governs the wait, as opts say (see
// [LockOptions]); the lock itself is not bound to ctx.
//
//   - PostgreSQL: pg_advisory_lock on the same 64-bit key as [LockNamed],
//     so a session lock and a transaction lock of one name exclude each
//     other there. Try: pg_try_advisory_lock; Timeout: lock_timeout.
//   - MySQL/MariaDB: GET_LOCK, with names longer than 64 characters (or
//     not valid UTF-8) hashed to fit; see internal/lockkey. Names compare
//     case-insensitively on some servers: "A" and "a" may be one lock.
//     GET_LOCK and LockNamed's lock table are different locks.
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
func LockSession(ctx context.Context, db *DB, name string, opts LockOptions) (*SessionLock, error) {
	const verb = "lock session"
	if db == nil || db.pool == nil {
		return nil, fmt.Errorf("racefree: %s: %w", verb, errNilExecutor)
	}
	if err := validateLockName(verb, name); err != nil {
		return nil, err
	}
	d := db.d
	switch {
	case d.Features().Has(dialect.NodeLocalNamedLocks):
		return nil, fmt.Errorf("racefree: %s %q: %w: on %s GET_LOCK excludes only sessions on the same node; use AcquireLease",
			verb, lockkey.Label(name, 64), ErrLockUnsupported, d.Server())
	case d.Name() == "sqlite":
		return nil, fmt.Errorf("racefree: %s %q: %w: SQLite has no session lock (its one lock, the write lock, would stop every writer); use LockNamed in a write transaction, or AcquireLease",
			verb, lockkey.Label(name, 64), ErrLockUnsupported)
	case !d.Features().Has(dialect.AdvisoryLocks):
		return nil, fmt.Errorf("racefree: %s %q: %w: %s has no advisory locks; use AcquireLease",
			verb, lockkey.Label(name, 64), ErrLockUnsupported, d.Server())
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, db.wrapErr(verb+": take connection", err)
	}
	l := &SessionLock{db: db, name: name, conn: conn}
	var got bool
	if d.Name() == "postgres" {
		got, err = l.lockPG(ctx, opts)
	} else {
		got, err = l.lockMySQL(ctx, opts)
	}
	if err != nil {
		// The statement may have taken the lock before it failed (a
		// session lock survives the statement's error): in doubt.
		l.discard()
		if errors.Is(d.Classify(err), ErrLockTimeout) {
			return nil, lockTimeoutErr(verb, name, d.Classify(err))
		}
		return nil, fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), d.Classify(err))
	}
	if got {
		// A lock dropped without Unlock must not pin a connection, holding
		// the lock, forever: when l is collected its connection is closed,
		// never pooled, which releases the lock. After Unlock the
		// connection is done and this does nothing. Not something to rely
		// on: collection may come late or never.
		runtime.AddCleanup(l, discardConn, conn)
	}
	if !got {
		conn.Release() // the server said no: the connection holds nothing
		if opts.Try {
			return nil, lockNotAcquiredErr(verb, name)
		}
		return nil, lockTimeoutErr(verb, name, errors.New("not granted within the timeout"))
	}
	return l, nil
}

// lockPG takes the advisory lock. A lock timeout is reported as an error
// of class ErrLockTimeout by the server.
func (l *SessionLock) lockPG(ctx context.Context, opts LockOptions) (bool, error) {
	key := lockkey.Key64(l.name)
	if opts.Try {
		var ok bool
		err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
		return ok, err
	}
	if opts.Timeout > 0 {
		ms := max(opts.Timeout.Milliseconds(), 1)
		var old, set string
		if err := l.conn.QueryRow(ctx, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, false)",
			strconv.FormatInt(ms, 10)+"ms").Scan(&old, &set); err != nil {
			return false, err
		}
		_, err := l.conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		if _, rerr := l.conn.Exec(context.WithoutCancel(ctx), "SELECT set_config('lock_timeout', $1, false)", old); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil && errors.Is(l.db.d.Classify(err), ErrLockTimeout) {
			// A timed-out wait holds nothing: keep the connection.
			return false, nil
		}
		return err == nil, err
	}
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
	return err == nil, err
}

// getLockForever is the GET_LOCK timeout racefree passes for "until ctx
// ends": a year, since negative timeouts mean "forever" only on some
// servers. ctx ending kills the connection, which ends the wait.
const getLockForever = 365 * 24 * 3600

// lockMySQL calls GET_LOCK, which answers 1 (granted), 0 (timed out) or
// NULL (an error, such as being killed).
func (l *SessionLock) lockMySQL(ctx context.Context, opts LockOptions) (bool, error) {
	timeout := float64(getLockForever)
	switch {
	case opts.Try:
		timeout = 0
	case opts.Timeout > 0:
		timeout = opts.Timeout.Seconds()
	}
	var got sql.NullInt64
	if err := l.conn.QueryRow(ctx, "SELECT GET_LOCK(?, ?)", lockkey.MySQLName(l.name), timeout).Scan(&got); err != nil {
		return false, err
	}
	if !got.Valid {
		return false, errors.New("GET_LOCK returned NULL")
	}
	return got.Int64 == 1, nil
}

// Name returns the lock's name as given to LockSession.
func (l *SessionLock) Name() string { return l.name }

// Held reports whether the lock is still held: nil if so, ErrLockLost if
// its session ended or the lock was released. It asks the server, so it
// also notices a connection that died quietly; such a connection is
// discarded.
func (l *SessionLock) Held(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return fmt.Errorf("racefree: check session lock %q: %w", lockkey.Label(l.name, 64), ErrLockLost)
	}
	var held bool
	var err error
	if l.db.d.Name() == "postgres" {
		// A bigint advisory key is stored as classid (high 32 bits),
		// objid (low 32 bits), objsubid 1.
		err = l.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"+
			" AND pid = pg_backend_pid() AND objsubid = 1"+
			" AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295))",
			lockkey.Key64(l.name)).Scan(&held)
	} else {
		err = l.conn.QueryRow(ctx, "SELECT COALESCE(IS_USED_LOCK(?) = CONNECTION_ID(), FALSE)",
			lockkey.MySQLName(l.name)).Scan(&held)
	}
	if err != nil {
		if ctx.Err() != nil {
			return l.db.wrapErr("check session lock", err)
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

// Unlock releases the lock and returns the connection to the pool. If the
// release cannot be confirmed the connection is discarded instead, which
// makes the server release the lock. It returns ErrLockLost if the lock
// was found already gone (its session had died: whatever ran since then
// ran unprotected), and nil after the first successful call.
func (l *SessionLock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	var released sql.NullBool
	var err error
	// The release must complete even if ctx is what ended the caller's
	// work; it is one short statement.
	rctx := context.WithoutCancel(ctx)
	if l.db.d.Name() == "postgres" {
		err = l.conn.QueryRow(rctx, "SELECT pg_advisory_unlock($1)", lockkey.Key64(l.name)).Scan(&released)
	} else {
		err = l.conn.QueryRow(rctx, "SELECT RELEASE_LOCK(?) = 1", lockkey.MySQLName(l.name)).Scan(&released)
	}
	switch {
	case err != nil:
		l.discardLocked()
		if errors.Is(l.db.d.Classify(err), ErrConnection) || errors.Is(l.db.d.Classify(err), ErrNotSent) {
			return fmt.Errorf("racefree: unlock session lock %q: %w (%w)", lockkey.Label(l.name, 64), ErrLockLost, l.db.d.Classify(err))
		}
		// The connection is closed, so the server releases the lock.
		return nil
	case !released.Valid || !released.Bool:
		l.discardLocked()
		return fmt.Errorf("racefree: unlock session lock %q: %w", lockkey.Label(l.name, 64), ErrLockLost)
	}
	err = l.conn.Release()
	l.conn = nil
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
