package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// A retry loop of your own around statements of your own: classify the
// error first (IsRetryable knows only errors racefree classified), and run
// again only what IsRetryable says did not take effect. Here another writer
// holds SQLite's write lock until the first attempt has failed.
func ExampleIsRetryable() {
	ctx := context.Background()
	db, cleanup := mustBusyExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
	defer cleanup()

	release := holdWriteLock(ctx, db)
	for attempt := 1; ; attempt++ {
		_, err := db.SQL().ExecContext(ctx, "INSERT INTO jobs (state) VALUES ('queued')")
		if err == nil {
			fmt.Println("attempt", attempt, "inserted")
			break
		}
		if !racefree.IsRetryable(db.Classify(err)) || attempt == 3 {
			fmt.Println(err)
			break
		}
		fmt.Println("attempt", attempt, "retryable:", errors.Is(db.Classify(err), racefree.ErrBusy))
		release() // the other writer commits
	}
	// Output:
	// attempt 1 retryable: true
	// attempt 2 inserted
}

// What the default policy decides after each failed attempt: a pause drawn
// at random up to a ceiling that doubles with every retry, until the
// attempt budget or the time budget is spent.
func ExampleBackoff_NextRetry() {
	b := racefree.Backoff{MaxAttempts: 3, MaxElapsed: time.Second, BaseDelay: 10 * time.Millisecond}
	for attempt := 1; attempt <= 3; attempt++ {
		delay, stop := b.NextRetry(racefree.FailedAttempt{Attempt: attempt, Class: dialect.ClassDeadlock})
		if stop != nil {
			fmt.Println(attempt, stop)
			break
		}
		ceiling := b.BaseDelay << (attempt - 1)
		fmt.Println(attempt, "pause up to", ceiling, delay <= ceiling)
	}
	// A first attempt that took longer than the whole time budget.
	_, stop := b.NextRetry(racefree.FailedAttempt{Attempt: 1, Elapsed: 2 * time.Second, Class: dialect.ClassDeadlock})
	fmt.Println(stop)
	// Output:
	// 1 pause up to 10ms true
	// 2 pause up to 20ms true
	// 3 racefree: attempt budget spent
	// racefree: time budget spent
}

// A policy of your own fails fast where a caller waits: a request handler
// gives the database three tries, 10 ms apart, and logs each failure. Here
// another writer holds SQLite's write lock for the whole time, so the
// third failure ends the retries with the policy's reason.
func ExampleRetryFunc() {
	ctx := context.Background()
	db, cleanup := mustBusyExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
	defer cleanup()
	release := holdWriteLock(ctx, db)
	defer release()

	errTooBusy := errors.New("too busy, try again later")
	failFast := racefree.RetryFunc(func(f racefree.FailedAttempt) (time.Duration, error) {
		fmt.Printf("attempt %d failed: %v\n", f.Attempt, f.Class)
		if f.Attempt == 3 {
			return 0, errTooBusy
		}
		return 10 * time.Millisecond, nil
	})
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: failFast}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO jobs (state) VALUES ('queued')")
		return err
	})
	fmt.Println(errors.Is(err, errTooBusy), errors.Is(err, racefree.ErrBusy))
	// Output:
	// attempt 1 failed: busy
	// attempt 2 failed: busy
	// attempt 3 failed: busy
	// true true
}

// NextRetry is how racefree asks a RetryFunc, and how a test checks one: a
// policy that wraps Backoff to stop early when the server is away rather
// than wait for it.
func ExampleRetryFunc_NextRetry() {
	errDown := errors.New("database down: not waiting")
	policy := racefree.RetryFunc(func(f racefree.FailedAttempt) (time.Duration, error) {
		if f.Class.Outage() {
			return 0, errDown
		}
		return racefree.Backoff{}.NextRetry(f)
	})
	_, stop := policy.NextRetry(racefree.FailedAttempt{Attempt: 1, Class: dialect.ClassSerialization})
	fmt.Println(stop)
	_, stop = policy.NextRetry(racefree.FailedAttempt{Attempt: 1, Outages: 1, OutagesInRow: 1, Class: dialect.ClassUnavailable})
	fmt.Println(stop)
	// Output:
	// <nil>
	// database down: not waiting
}

// A *RetryError says how retrying went: it matches the last attempt's
// error and the reason retrying stopped. Here another writer holds
// SQLite's write lock through both attempts the policy allows.
func ExampleRetryError() {
	ctx := context.Background()
	db, cleanup := mustBusyExampleDB(ctx, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
	defer cleanup()
	release := holdWriteLock(ctx, db)
	defer release()

	err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: racefree.Backoff{MaxAttempts: 2}}, func(ctx context.Context, tx *racefree.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO jobs (state) VALUES ('queued')")
		return err
	})
	var re *racefree.RetryError
	if errors.As(err, &re) {
		fmt.Println(re.Attempts, re.Reason)
		fmt.Println(errors.Is(err, racefree.ErrBusy), errors.Is(err, racefree.ErrAttemptsExhausted))
		fmt.Println(racefree.IsRetryable(err)) // racefree's budget is spent: do not loop on it
	}
	// Output:
	// 2 racefree: attempt budget spent
	// true true
	// false
}

// A *CommitUnknownError means COMMIT was sent and no answer came: the work
// may have been applied. Tell it apart from a failure before running the
// work again; RunOnce does that with an idempotency key. (The error is
// made up here: a connection cut during COMMIT cannot be staged on SQLite.)
func ExampleCommitUnknownError() {
	outcome := func(err error) string {
		var unknown *racefree.CommitUnknownError
		switch {
		case err == nil:
			return "committed"
		case errors.As(err, &unknown):
			return "maybe committed (" + unknown.Err.Error() + "): look before running it again"
		default:
			return "not committed: " + err.Error()
		}
	}
	fmt.Println(outcome(nil))
	fmt.Println(outcome(fmt.Errorf("charge order 1042: %w", &racefree.CommitUnknownError{Err: io.ErrUnexpectedEOF})))
	fmt.Println(outcome(errors.New("insufficient funds")))
	fmt.Println(errors.Is(&racefree.CommitUnknownError{Err: io.ErrUnexpectedEOF}, racefree.ErrCommitUnknown))
	// Output:
	// committed
	// maybe committed (unexpected EOF): look before running it again
	// not committed: insufficient funds
	// true
}
