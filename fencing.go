package racefree

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/backoff"
	"github.com/racefree/racefree/internal/lockkey"
	"github.com/racefree/racefree/session"
)

// DefaultLeaseTTL is how long a lease lasts without renewal when
// LeaseOptions.TTL is zero.
const DefaultLeaseTTL = 30 * time.Second

// LeaseOptions configure AcquireLease. The zero value is a lease of
// DefaultLeaseTTL, waited for until ctx ends.
type LeaseOptions struct {
	// TTL is how long the lease lasts unless renewed; 0 means
	// DefaultLeaseTTL. Renew well within it (every TTL/3, say), or let
	// Lease.Do renew it.
	TTL time.Duration
	// Wait says how long to wait for a lease another holder has.
	Wait Wait
}

// Lease is a named lock kept in a table, racefree_leases, with an expiry
// and a fencing token. It is the named lock for engines whose own named
// locks do not exclude cluster-wide (MariaDB Galera, where GET_LOCK is
// local to a node) or do not exist (CockroachDB), and for holders that must
// survive a reconnect; it works on every engine.
//
// A lease excludes by time: it is held until its expiry, measured on the
// database's clock, unless renewed. A holder that stalls past its TTL (a GC
// pause, a partition) may still believe it holds the lease after another
// has acquired it. The fencing token makes that harmless: every
// acquisition increments it, and a write guarded with Check inside its
// transaction commits only while the token is still the current one. Check
// locks the lease row for the rest of that transaction, so a new holder
// cannot acquire in between (on Galera the guarded transaction and the
// acquisition conflict at certification and one of them fails). You can
// also store Token in the resource and refuse writes that carry a smaller
// one.
//
// Waiting for a held lease polls, with jittered backoff up to 250 ms; a
// killed holder's lease is free after its TTL.
//
// A Lease is safe for concurrent use (a renewal goroutine beside the
// worker).
type Lease struct {
	name  string
	token int64
	ttl   time.Duration

	db     *DB
	key    int64
	holder string    // random id of this acquisition, for diagnostics
	at     time.Time // when it was acquired

	mu       sync.Mutex // guards released
	released bool
}

// Name returns the name the lease was acquired under.
func (l *Lease) Name() string { return l.name }

// Token returns the fencing token: strictly greater than every token
// issued for this name before. Store it with what the lease guards, and
// refuse a write that carries a smaller one; or let Check do it inside
// the guarded transaction.
func (l *Lease) Token() int64 { return l.token }

// TTL returns the lease's time to live: how long it lasts unless renewed.
func (l *Lease) TTL() time.Duration { return l.ttl }

// leaseTableName is the table that holds leases.
const leaseTableName = "racefree_leases"

// leaseTableState is what a DB knows about its lease table. The zero value
// knows nothing.
type leaseTableState struct {
	ready atomic.Bool // CreateLeaseTable made sure the table exists
}

// leaser is the dialect's lease rendering, or ErrLockUnsupported.
func (db *DB) leaser(verb string) (dialect.Leaser, error) {
	if l, ok := db.d.(dialect.Leaser); ok {
		return l, nil
	}
	return nil, fmt.Errorf("racefree: %s: %w: the %s dialect has no leases", verb, ErrLockUnsupported, db.d.Name())
}

// CreateLeaseTable creates racefree_leases if it does not exist.
// AcquireLease calls it once per DB; call it at startup when the
// application's database user may not create tables (then create it once
// as an administrator).
func CreateLeaseTable(ctx context.Context, db *DB) error {
	if db == nil || db.pool == nil {
		return errNilExecutor
	}
	if db.leases.ready.Load() {
		return nil
	}
	l, err := db.leaser("create lease table")
	if err != nil {
		return err
	}
	// On a Galera cluster even these autocommit statements can be aborted
	// by a conflicting replicated write or DDL (a deadlock error): retry.
	err = db.retry(ctx, nil, func(ctx context.Context) error { return createLeaseTable(ctx, db, l) })
	if err == nil {
		db.leases.ready.Store(true)
	}
	return err
}

func createLeaseTable(ctx context.Context, db *DB, l dialect.Leaser) error {
	// Looking in the catalog first avoids CREATE TABLE's metadata lock,
	// which on MySQL may wait for every transaction that uses the table.
	if sr, ok := db.d.(dialect.SchemaReader); ok {
		_, err := sr.ReadTable(ctx, db.pool, leaseTableName)
		if err == nil {
			return nil
		}
		if !errors.Is(err, dialect.ErrNoTable) {
			return db.wrapErr("look up lease table", err)
		}
	}
	_, err := db.pool.Exec(ctx, l.CreateLeaseTableSQL(leaseTableName))
	// Two sessions creating the table at once can collide on the
	// catalog's unique index on PostgreSQL; the table exists either way.
	if err != nil && !errors.Is(db.d.Classify(err), ErrUniqueViolation) {
		return db.wrapErr("create lease table", err)
	}
	return nil
}

// AcquireLease acquires the lease called name, waiting as opts.Wait says:
// a lease another holder keeps past it is not acquired
// (ErrLockNotAcquired). Each acquisition runs in a transaction of its own,
// retried by RunInTx; ctx governs the wait and each attempt.
func AcquireLease(ctx context.Context, db *DB, name string, opts LeaseOptions) (_ *Lease, err error) {
	const verb = "acquire lease"
	if db == nil || db.pool == nil {
		return nil, fmt.Errorf("racefree: %s: %w", verb, errNilExecutor)
	}
	if err := validateLockName(verb, name); err != nil {
		return nil, err
	}
	if opts.TTL < 0 {
		return nil, inputError(verb, "negative TTL %v", opts.TTL)
	}
	if err := opts.Wait.check(verb); err != nil {
		return nil, err
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	if ttl < time.Millisecond {
		return nil, inputError(verb, "TTL %v is below a millisecond", ttl)
	}
	if err := CreateLeaseTable(ctx, db); err != nil {
		return nil, err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	l := &Lease{name: name, ttl: ttl, db: db, key: lockkey.Key64(name), holder: hex.EncodeToString(id[:])}
	start := time.Now()
	defer func() { db.observeLock(ctx, lockKindLease, name, start, err) }()
	var deadline time.Time
	if opts.Wait.Timeout > 0 {
		deadline = time.Now().Add(opts.Wait.Timeout)
	}
	policy := backoff.Policy{Base: 5 * time.Millisecond, Max: 250 * time.Millisecond}
	for attempt := 1; ; attempt++ {
		got, err := l.tryAcquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), err)
		}
		if got {
			l.at = time.Now()
			return l, nil
		}
		if opts.Wait.Try {
			return nil, notAcquired(verb, name, opts.Wait, nil)
		}
		delay := policy.Delay(attempt)
		if !deadline.IsZero() && time.Now().Add(delay).After(deadline) {
			if rest := time.Until(deadline); rest > 0 {
				delay = rest
			} else {
				return nil, notAcquired(verb, name, opts.Wait, errors.New("another holder keeps it"))
			}
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("racefree: %s %q: %w", verb, lockkey.Label(name, 64), db.d.Classify(err))
		}
	}
}

// tryAcquire takes the lease if it is free (never taken, released, or
// expired) and reads the new token, in one transaction.
func (l *Lease) tryAcquire(ctx context.Context) (bool, error) {
	db, d := l.db, l.db.d
	lr, err := db.leaser("acquire lease")
	if err != nil {
		return false, err
	}
	ph := d.Placeholder
	now := lr.NowMillisSQL()
	// The row exists from the first acquisition on; the insert leaves it
	// alone and takes no shared lock (see dialect.Leaser).
	ensure := lr.InsertLeaseSQL(leaseTableName)
	take := "UPDATE " + leaseTableName + " SET token = token + 1, holder = " + ph(1) + ", expires_ms = " + now + " + " + ph(2) +
		" WHERE id = " + ph(3) + " AND expires_ms <= " + now
	var got bool
	err = RunInTx(ctx, db, TxOptions{}, func(ctx context.Context, tx *Tx) error {
		got = false
		if _, err := tx.Exec(ctx, ensure, l.key, lockkey.Label(l.name, 255)); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, take, l.holder, l.ttl.Milliseconds(), l.key)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		got = true
		return tx.QueryRow(ctx, "SELECT token FROM "+leaseTableName+" WHERE id = "+ph(1), l.key).Scan(&l.token)
	})
	if errors.Is(err, ErrCommitUnknown) {
		// The acquisition's COMMIT lost its answer: the row says whether
		// it landed, since only this Lease writes its holder id.
		return l.settleAcquire(ctx, err)
	}
	if err != nil {
		return false, classifyTransparent(d, err)
	}
	return got, nil
}

// settleAcquire reads the lease row after an acquisition whose COMMIT's
// outcome was lost: this Lease holds it if the row names it as holder,
// with the row's token. Otherwise the acquisition did not land (or was
// superseded after expiry) and the caller waits as for a lease held by
// another.
func (l *Lease) settleAcquire(ctx context.Context, unknown error) (bool, error) {
	ph := l.db.d.Placeholder
	var token int64
	var holder string
	read := func(ctx context.Context) error {
		err := l.db.pool.QueryRow(ctx, "SELECT token, holder FROM "+leaseTableName+" WHERE id = "+ph(1), l.key).Scan(&token, &holder)
		if errors.Is(err, session.ErrNoRows) {
			return nil // the row's first insert did not land either
		}
		return err
	}
	if err := l.db.retryIdempotent(ctx, read(ctx), read); err != nil {
		return false, errors.Join(unknown, l.db.wrapErr("acquire lease: settle the unknown commit", err))
	}
	if holder != l.holder {
		return false, nil
	}
	l.token = token
	return true, nil
}

// Renew extends the lease by its TTL from now. It succeeds as long as no
// one else has acquired the lease since — even after the expiry, since the
// token then still proves that nobody else held it — and returns
// ErrLeaseLost otherwise.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.usable("renew lease"); err != nil {
		return err
	}
	lr, err := l.db.leaser("renew lease")
	if err != nil {
		return err
	}
	ph := l.db.d.Placeholder
	var res session.Result
	renew := func(ctx context.Context) (err error) {
		res, err = l.db.pool.Exec(ctx, "UPDATE "+leaseTableName+" SET writes = writes + 1, expires_ms = "+lr.NowMillisSQL()+" + "+ph(1)+
			" WHERE id = "+ph(2)+" AND token = "+ph(3), l.ttl.Milliseconds(), l.key, l.token)
		return err
	}
	// Renewing twice is renewing: a renewal whose answer was lost is sent
	// again, and the token still decides.
	err = l.db.retryIdempotent(ctx, renew(ctx), renew)
	return l.oneRow(ctx, "renew lease", res, err)
}

// Release gives the lease up at once, so that the next holder need not
// wait for the expiry. It returns ErrLeaseLost if someone else had already
// acquired it. Release is idempotent.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	ph := l.db.d.Placeholder
	ctx = context.WithoutCancel(ctx)
	var res session.Result
	tries := 0
	release := func(ctx context.Context) (err error) {
		tries++
		res, err = l.db.pool.Exec(ctx, "UPDATE "+leaseTableName+" SET expires_ms = 0, holder = ''"+
			" WHERE id = "+ph(1)+" AND token = "+ph(2), l.key, l.token)
		return err
	}
	// A release whose answer was lost is sent again. If the first had
	// landed, the second changes nothing (MySQL then reports no row): the
	// row, still of this token and expired, says the release happened.
	err := l.db.retryIdempotent(ctx, release(ctx), release)
	if err == nil && tries > 1 {
		if n, rerr := res.RowsAffected(); rerr == nil && n == 0 && l.releasedAlready(ctx) {
			l.db.observeRelease(ctx, lockKindLease, l.name, l.at)
			return nil
		}
	}
	if err = l.oneRow(ctx, "release lease", res, err); err == nil {
		l.db.observeRelease(ctx, lockKindLease, l.name, l.at)
	}
	return err
}

// releasedAlready reports whether the lease row still has this Lease's
// token and is released (expired, no holder).
func (l *Lease) releasedAlready(ctx context.Context) bool {
	ph := l.db.d.Placeholder
	var token, expires int64
	err := l.db.pool.QueryRow(ctx, "SELECT token, expires_ms FROM "+leaseTableName+" WHERE id = "+ph(1), l.key).Scan(&token, &expires)
	return err == nil && token == l.token && expires == 0
}

// Check is the fence: call it inside the transaction whose writes the
// lease guards, before they are committed. It returns nil if the lease's
// token is still the current one, and then holds the lease row's write
// lock until tx ends, so that no one can acquire the lease before tx
// commits; otherwise ErrLeaseLost, and tx must roll back. Check relies on
// the token, not on the clock: an expired lease that nobody else has
// acquired still passes.
//
// The lock is an UPDATE of the lease row (it counts writes; MySQL reports
// a row as changed only if a value changed), because a
// shared lock would not cross MariaDB Galera nodes: there the guarded
// transaction and a concurrent acquisition on another node both write the
// row, and certification fails one of them.
func (l *Lease) Check(ctx context.Context, tx *Tx) error {
	const verb = "check lease"
	if tx == nil || tx.db == nil || tx.tx == nil {
		return fmt.Errorf("racefree: %s: nil transaction", verb)
	}
	if err := l.usable(verb); err != nil {
		return err
	}
	ph := tx.db.d.Placeholder
	res, err := tx.tx.Exec(ctx, "UPDATE "+leaseTableName+" SET writes = writes + 1 WHERE id = "+ph(1)+" AND token = "+ph(2), l.key, l.token)
	return l.oneRow(ctx, verb, res, err)
}

func (l *Lease) usable(verb string) error {
	if l == nil || l.db == nil {
		return fmt.Errorf("racefree: %s: nil lease", verb)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("racefree: %s %q: %w (released)", verb, lockkey.Label(l.name, 64), ErrLeaseLost)
	}
	return nil
}

// oneRow turns the result of a statement that must change the lease row
// into nil or ErrLeaseLost.
func (l *Lease) oneRow(ctx context.Context, verb string, res interface{ RowsAffected() (int64, error) }, err error) error {
	if err != nil {
		return l.db.wrapErr(verb, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return l.db.wrapErr(verb, err)
	}
	if n == 0 {
		err := fmt.Errorf("racefree: %s %q (token %d): %w", verb, lockkey.Label(l.name, 64), l.token, ErrLeaseLost)
		l.db.observe(ctx, Event{Kind: EventLeaseLost, Lock: lockkey.Label(l.name, 64), LockKind: lockKindLease, Err: err})
		return err
	}
	return nil
}
