package racefree

import (
	"context"
	"errors"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/backoff"
)

// RetryPolicy decides whether work that failed with an error racefree
// knows to be safe to run again — a transaction that did not commit, a
// get-or-create, a transfer — runs again, and after what pause. Backoff is
// the default (a nil RetryPolicy); write your own to bound retries by
// something else, or to log them (wrap Backoff, as RetryFunc's example
// does).
//
// Which errors reach the policy is racefree's decision, not the policy's:
// an error that may have taken effect (an unknown COMMIT, a unique
// violation, an error of yours) is returned at once and never shown to it
// — except where running again is safe by construction: a get-or-create
// family call, idempotent, and RunOnce, whose key settles it, run again
// after an unknown COMMIT or a lost connection, as the policy allows.
// The context's deadline bounds every policy: a pause that would run past
// it ends the retries with context.DeadlineExceeded. One retry never
// pauses, whatever delay the policy returns: after a get-or-create lost
// its race to a row that the transaction's snapshot cannot see
// (PostgreSQL, REPEATABLE READ or SERIALIZABLE), that row is committed and
// a restart sees it at once.
type RetryPolicy interface {
	// NextRetry is called after each failed attempt with what is known
	// about it. It returns the pause before the next attempt, or a non-nil
	// reason to stop, which the caller gets as RetryError.Reason.
	NextRetry(f FailedAttempt) (delay time.Duration, stop error)
}

// FailedAttempt is what a RetryPolicy is told about an attempt that failed
// with a retryable error.
type FailedAttempt struct {
	// Attempt is the failed attempt's number, from 1.
	Attempt int
	// Outages is how many of the attempts so far (this one included)
	// failed because no session could be had (ErrUnavailable: the server
	// down or restarting, over its connection limit), and OutagesInRow
	// how many in a row up to this one: 0 when this one failed otherwise.
	Outages, OutagesInRow int
	// Elapsed is the time since the first attempt began.
	Elapsed time.Duration
	// Class is the error's class; Err the error.
	Class dialect.Class
	Err   error
}

// RetryFunc is a function as a RetryPolicy.
type RetryFunc func(f FailedAttempt) (delay time.Duration, stop error)

// NextRetry calls fn(f).
func (fn RetryFunc) NextRetry(f FailedAttempt) (time.Duration, error) { return fn(f) }

// NoRetry runs work once: the first failure is returned, inside a
// *RetryError whose Reason is ErrAttemptsExhausted.
var NoRetry RetryPolicy = Backoff{MaxAttempts: 1}

// Defaults of Backoff's zero fields.
const (
	// DefaultMaxAttempts is how many times work that keeps failing with
	// retryable errors runs. Under heavy contention on one key,
	// SERIALIZABLE transactions on PostgreSQL were measured failing 20
	// times in a row now and then, so the budget is generous; the time
	// budget bounds the worst case.
	DefaultMaxAttempts = 30
	// DefaultMaxElapsed bounds the time spent on one call across all
	// attempts and the pauses between them.
	DefaultMaxElapsed = 30 * time.Second
	// DefaultBaseDelay is the ceiling of the first pause; it doubles with
	// every retry up to DefaultMaxDelay. Pauses are drawn uniformly from zero to
	// the ceiling (full jitter), so workers that collided spread out.
	DefaultBaseDelay = 2 * time.Millisecond
	// DefaultMaxDelay caps the pause between two attempts.
	DefaultMaxDelay = 250 * time.Millisecond
	// DefaultOutageBaseDelay is the ceiling of the first pause after the
	// server could not be reached or turned the session away
	// (ErrUnavailable); it doubles with every such failure in a row up to
	// DefaultOutageMaxDelay. A restart takes seconds and a fleet over the
	// connection limit needs some of its members to wait: pausing on the
	// contention scale would only hammer the server.
	DefaultOutageBaseDelay = 50 * time.Millisecond
	// DefaultOutageMaxDelay caps the pause after ErrUnavailable.
	DefaultOutageMaxDelay = time.Second
)

// Backoff is the default RetryPolicy: exponential backoff with full jitter,
// bounded by an attempt budget and a time budget. Its zero value is the
// default policy; a zero field takes its Default constant.
type Backoff struct {
	// MaxAttempts is the attempt budget; 1 means no retries. Attempts that
	// failed because no session could be had (ErrUnavailable) do not
	// count: waiting for the server is bounded by MaxElapsed and the
	// context's deadline.
	MaxAttempts int
	// MaxElapsed is the time budget across attempts.
	MaxElapsed time.Duration
	// BaseDelay and MaxDelay shape the pauses after contention (deadlocks,
	// serialization failures, busy errors, lost connections).
	BaseDelay, MaxDelay time.Duration
	// OutageBaseDelay and OutageMaxDelay shape the pauses after
	// ErrUnavailable.
	OutageBaseDelay, OutageMaxDelay time.Duration
}

// NextRetry stops with ErrAttemptsExhausted when the attempt budget is
// spent, with ErrTimeBudgetSpent when the pause would end past the time
// budget, and otherwise pauses on the outage scale after ErrUnavailable
// and on the contention scale after anything else.
func (b Backoff) NextRetry(f FailedAttempt) (time.Duration, error) {
	maxAttempts := orDefault(b.MaxAttempts, DefaultMaxAttempts)
	if maxAttempts == 1 || f.Attempt-f.Outages >= maxAttempts {
		return 0, ErrAttemptsExhausted
	}
	var delay time.Duration
	if f.OutagesInRow > 0 {
		delay = backoff.Policy{Base: orDefault(b.OutageBaseDelay, DefaultOutageBaseDelay), Max: orDefault(b.OutageMaxDelay, DefaultOutageMaxDelay)}.Delay(f.OutagesInRow)
	} else {
		delay = backoff.Policy{Base: orDefault(b.BaseDelay, DefaultBaseDelay), Max: orDefault(b.MaxDelay, DefaultMaxDelay)}.Delay(f.Attempt - f.Outages)
	}
	if f.Elapsed+delay > orDefault(b.MaxElapsed, DefaultMaxElapsed) {
		return 0, ErrTimeBudgetSpent
	}
	return delay, nil
}

// orDefault is v, or def when v is not positive.
func orDefault[N int | time.Duration](v, def N) N {
	if v > 0 {
		return v
	}
	return def
}

// policyOrDefault is p, or Backoff{} when p is nil.
func policyOrDefault(p RetryPolicy) RetryPolicy {
	if p == nil {
		return Backoff{}
	}
	return p
}

// retry runs attempt until it succeeds, fails with an error that is not
// retryable, or policy stops it.
func (db *DB) retry(ctx context.Context, policy RetryPolicy, attempt func(context.Context) error) error {
	start := time.Now()
	return db.retryAfter(ctx, policy, start, attempt(ctx), attempt)
}

// retryAfter goes on from a first attempt that began at start and ended
// with err: it returns err when it is nil or not retryable, and otherwise
// asks policy and runs attempt again until it succeeds, fails with an
// error that is not retryable, or policy stops it (a *RetryError holding
// the last error and the reason). An error is retryable when its class
// says the work did not take effect (Class.Retryable), or when the attempt
// marked it so (retrySafeError); never when COMMIT's outcome is unknown,
// nor when it is the *RetryError of retries inside the attempt.
// Every retry, the giving up and an outcome left unknown are observed
// (EventTxRetry, EventTxGaveUp, EventCommitUnknown).
func (db *DB) retryAfter(ctx context.Context, policy RetryPolicy, start time.Time, err error, attempt func(context.Context) error) error {
	policy = policyOrDefault(policy)
	var f FailedAttempt
	for n := 1; ; n++ {
		if err == nil {
			return nil
		}
		if !db.retryable(err) {
			if errors.Is(err, ErrCommitUnknown) {
				db.observe(ctx, Event{Kind: EventCommitUnknown, Attempt: n, Class: dialect.ClassCommitUnknown, Err: err})
			}
			return err
		}
		f.Attempt, f.Elapsed, f.Err = n, time.Since(start), err
		f.Class = db.d.Classify(err).Class
		if f.Class == dialect.ClassUnavailable {
			f.Outages++
			f.OutagesInRow++
		} else {
			f.OutagesInRow = 0
		}
		delay, stop := policy.NextRetry(f)
		if stop == nil && errors.As(err, new(*restartNowError)) {
			delay = 0 // the row it could not see is committed: nothing to wait for
		}
		if stop == nil {
			if deadline, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(deadline) {
				// Sleeping would only run into the deadline: give up now.
				stop = context.DeadlineExceeded
			}
		}
		if stop == nil {
			db.observe(ctx, Event{Kind: EventTxRetry, Attempt: n, Class: f.Class, Err: err, Delay: delay})
			stop = sleep(ctx, delay)
		}
		if stop != nil {
			db.observe(ctx, Event{Kind: EventTxGaveUp, Attempt: n, Class: f.Class, Err: err})
			return &RetryError{Attempts: n, Elapsed: time.Since(start), LastErr: err, Reason: stop}
		}
		err = attempt(ctx)
	}
}

// retryable reports whether an attempt that failed with err may be run
// again: see retryAfter.
func (db *DB) retryable(err error) bool {
	if errors.As(err, new(*RetryError)) {
		// A budget spent inside (a RunInTx the call ran) stays spent.
		return false
	}
	if errors.As(err, new(*retrySafeError)) {
		// The attempt's phase shows it safe, whatever its class says: an
		// idempotent call (a get-or-create) settles an unknown COMMIT by
		// running again.
		return true
	}
	if errors.Is(err, ErrCommitUnknown) {
		// It may have taken effect.
		return false
	}
	return db.d.Classify(err).Class.Retryable()
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
