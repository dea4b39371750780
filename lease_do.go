package racefree

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

// Do runs fn while keeping the lease: a goroutine renews it every third of
// its TTL, for as long as fn runs. fn receives the fencing token (to write
// with the work it guards: see Check) and a context that is canceled, with
// a cause matching ErrLeaseLost, the moment the lease is lost:
//
//   - a renewal finds that someone else acquired the lease (the fencing
//     token moved on);
//   - renewals keep failing (the connection is lost, the server restarts)
//     until a safety margin of a tenth of the TTL before the lease would
//     expire: from then on another holder may acquire it, and fn must stop
//     before it could.
//
// Transient renewal errors are retried until that margin. The lease's
// expiry is reckoned from when each renewal was sent, so the margin holds
// whatever the network delay. Do returns fn's error, joined with
// ErrLeaseLost when the lease was lost (fn's context error then says so
// too, through context.Cause). It does not release the lease: call Release
// after, or let it expire. ctx governs fn and the renewals; Do returns only
// once its renewing goroutine has stopped.
func (l *Lease) Do(ctx context.Context, fn func(ctx context.Context, token int64) error) error {
	if err := l.usable("keep lease"); err != nil {
		return err
	}
	if fn == nil {
		return inputError("keep lease", "nil function")
	}
	fnCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- l.keep(fnCtx, stop, cancel) }()
	err := fn(fnCtx, l.token)
	close(stop)
	lost := <-done
	if lost != nil {
		return errors.Join(err, lost)
	}
	return err
}

// keep renews the lease until stop closes, and cancels with the reason
// when it is lost, which it also returns.
func (l *Lease) keep(ctx context.Context, stop <-chan struct{}, cancel context.CancelCauseFunc) error {
	every := l.ttl / 3
	margin := l.ttl / 10
	safeUntil := l.at.Add(l.ttl - margin) // from the acquisition, which set the expiry
	retry := max(every/4, time.Millisecond)
	next := every
	for {
		t := time.NewTimer(min(next, max(time.Until(safeUntil), 0)))
		select {
		case <-stop:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return nil // fn's own context ended: not a loss
		case <-t.C:
		}
		if !time.Now().Before(safeUntil) {
			lost := fmt.Errorf("racefree: keep lease %q (token %d): %w: not renewed before its safety margin", lockkey.Label(l.name, 64), l.token, ErrLeaseLost)
			l.db.observe(ctx, Event{Kind: EventLeaseLost, Lock: lockkey.Label(l.name, 64), LockKind: lockKindLease, Err: lost})
			cancel(lost)
			return lost
		}
		sent := time.Now()
		err := l.Renew(context.WithoutCancel(ctx))
		switch {
		case err == nil:
			safeUntil = sent.Add(l.ttl - margin)
			next = every
		case errors.Is(err, ErrLeaseLost):
			cancel(err)
			return err
		case transientRenewal(l.db, err):
			next = retry // try again, until the margin
		default:
			lost := fmt.Errorf("racefree: keep lease %q (token %d): %w: renewal failed: %w", lockkey.Label(l.name, 64), l.token, ErrLeaseLost, err)
			cancel(lost)
			return lost
		}
	}
}

// transientRenewal reports whether a renewal's error may pass: the
// connection or the server, not the lease.
func transientRenewal(db *DB, err error) bool {
	switch dialect.ClassOf(db.d, err) {
	case dialect.ClassConnection, dialect.ClassNotSent, dialect.ClassBusy, dialect.ClassDeadlock,
		dialect.ClassSerialization, dialect.ClassLockNotAcquired, dialect.ClassCanceled:
		return true
	}
	return false
}
