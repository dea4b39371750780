package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/fakedb"
)

// observedFake is a fake database whose events rec records.
func observedFake(t *testing.T, hooks fakedb.Hooks, rec *recorder) *racefree.DB {
	t.Helper()
	sqlDB, _ := fakedb.Open(hooks)
	t.Cleanup(func() { sqlDB.Close() })
	db, err := racefree.New(context.Background(), sqlDB, fakedb.Dialect{}, racefree.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// A custom policy decides: its pauses are kept, its stop reason is the
// RetryError's, and it sees the failed attempts in order with their class.
func TestRetryPolicy_Custom(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{})
	errEnough := errors.New("enough")
	var seen []racefree.FailedAttempt
	policy := racefree.RetryFunc(func(f racefree.FailedAttempt) (time.Duration, error) {
		seen = append(seen, f)
		if f.Attempt == 4 {
			return 0, errEnough
		}
		return time.Microsecond, nil
	})
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: policy}, func(context.Context, *racefree.Tx) error {
		return serverErr(dialect.ClassSerialization)
	})
	var re *racefree.RetryError
	if !errors.As(err, &re) || re.Attempts != 4 || re.Reason != errEnough || !errors.Is(err, racefree.ErrSerialization) {
		t.Fatalf("err = %v, want a RetryError after 4 attempts for the policy's reason, holding the serialization failure", err)
	}
	for i, f := range seen {
		if f.Attempt != i+1 || f.Class != dialect.ClassSerialization || f.Outages != 0 || f.Err == nil {
			t.Errorf("failure %d: %+v", i, f)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("policy asked %d times, want 4", len(seen))
	}
}

// NoRetry runs once; a policy is never asked about an error that may have
// taken effect.
func TestRetryPolicy_NoRetryAndUnretryable(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{})
	calls := 0
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: racefree.NoRetry}, func(context.Context, *racefree.Tx) error {
		calls++
		return serverErr(dialect.ClassDeadlock)
	})
	if calls != 1 || !errors.Is(err, racefree.ErrAttemptsExhausted) || !errors.Is(err, racefree.ErrDeadlock) {
		t.Fatalf("NoRetry: %d calls, err %v; want 1 call and a spent budget holding the deadlock", calls, err)
	}

	asked := false
	policy := racefree.RetryFunc(func(racefree.FailedAttempt) (time.Duration, error) { asked = true; return 0, nil })
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: policy}, func(context.Context, *racefree.Tx) error {
		return serverErr(dialect.ClassUniqueViolation)
	})
	if asked || !errors.Is(err, racefree.ErrUniqueViolation) {
		t.Fatalf("unique violation: policy asked %v, err %v; want it never asked", asked, err)
	}
}

// The context's deadline bounds any policy: a pause past it ends the
// retries at once.
func TestRetryPolicy_DeadlineBoundsPolicy(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	patient := racefree.RetryFunc(func(racefree.FailedAttempt) (time.Duration, error) { return time.Hour, nil })
	start := time.Now()
	err := racefree.RunInTx(ctx, db, racefree.TxOptions{Retry: patient}, func(context.Context, *racefree.Tx) error {
		return serverErr(dialect.ClassBusy)
	})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("err = %v after %v, want the deadline at once", err, time.Since(start))
	}
}

// Backoff's budgets: attempts not counting outages, and time.
func TestBackoff_NextRetry(t *testing.T) {
	b := racefree.Backoff{MaxAttempts: 3, MaxElapsed: time.Second, BaseDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond,
		OutageBaseDelay: 100 * time.Millisecond, OutageMaxDelay: 200 * time.Millisecond}
	for _, tc := range []struct {
		name     string
		f        racefree.FailedAttempt
		stop     error
		maxDelay time.Duration
		minDelay time.Duration
	}{
		{"first", racefree.FailedAttempt{Attempt: 1}, nil, time.Millisecond, 0},
		{"second", racefree.FailedAttempt{Attempt: 2}, nil, 2 * time.Millisecond, 0},
		{"budget spent", racefree.FailedAttempt{Attempt: 3}, racefree.ErrAttemptsExhausted, 0, 0},
		{"outages do not count", racefree.FailedAttempt{Attempt: 10, Outages: 8, OutagesInRow: 8}, nil, 200 * time.Millisecond, 0},
		{"time spent", racefree.FailedAttempt{Attempt: 1, Elapsed: time.Second}, racefree.ErrTimeBudgetSpent, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				d, stop := b.NextRetry(tc.f)
				if stop != tc.stop || d > tc.maxDelay || d < tc.minDelay {
					t.Fatalf("NextRetry(%+v) = %v, %v; want stop %v and a pause up to %v", tc.f, d, stop, tc.stop, tc.maxDelay)
				}
			}
		})
	}
	if _, stop := (racefree.Backoff{}).NextRetry(racefree.FailedAttempt{Attempt: racefree.DefaultMaxAttempts}); stop != racefree.ErrAttemptsExhausted {
		t.Fatalf("zero Backoff after DefaultMaxAttempts: stop = %v", stop)
	}
}

// The observer sees each retry with its attempt, class and pause, the
// giving up, and a COMMIT left unknown.
func TestObserver_TxEvents(t *testing.T) {
	var rec recorder
	db := observedFake(t, fakedb.Hooks{}, &rec)
	calls := 0
	err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: racefree.Backoff{MaxAttempts: 3, BaseDelay: time.Microsecond, MaxDelay: time.Microsecond}},
		func(context.Context, *racefree.Tx) error {
			calls++
			return serverErr(dialect.ClassDeadlock)
		})
	if !errors.Is(err, racefree.ErrAttemptsExhausted) {
		t.Fatal(err)
	}
	if rec.count(racefree.EventTxRetry) != 2 || rec.count(racefree.EventTxGaveUp) != 1 {
		t.Fatalf("events %+v, want 2 retries and 1 giving up", rec.events)
	}
	for i, e := range rec.events[:2] {
		if e.Attempt != i+1 || e.Class != dialect.ClassDeadlock || e.Err == nil || e.Engine == "" {
			t.Errorf("retry event %d: %+v", i, e)
		}
	}
	if last := rec.events[2]; last.Attempt != 3 || last.Class != dialect.ClassDeadlock {
		t.Errorf("gave-up event: %+v", last)
	}

	var unknown recorder
	db = observedFake(t, fakedb.Hooks{Commit: func(int) error { return io.ErrUnexpectedEOF }}, &unknown)
	err = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error { return nil })
	if !errors.Is(err, racefree.ErrCommitUnknown) {
		t.Fatal(err)
	}
	if unknown.count(racefree.EventCommitUnknown) != 1 || unknown.count(racefree.EventTxRetry) != 0 {
		t.Fatalf("events %+v, want one unknown commit and no retry", unknown.events)
	}
}

// A transaction's function that returns one of the class sentinels,
// wrapped in its own words (it learned of a deadlock some other way), is
// run again as if the driver had said so; IsRetryable agrees.
func TestRunInTx_RetriesWrappedSentinel(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{})
	for _, tc := range []struct {
		sentinel error
		retried  bool
	}{
		{racefree.ErrDeadlock, true},
		{racefree.ErrSerialization, true},
		{racefree.ErrUniqueViolation, false},
		{racefree.ErrCommitUnknown, false},
	} {
		runs := 0
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{Retry: racefree.Backoff{BaseDelay: time.Microsecond}}, func(context.Context, *racefree.Tx) error {
			runs++
			if runs == 1 {
				return fmt.Errorf("ledger: post entry: %w", tc.sentinel)
			}
			return nil
		})
		if got := err == nil && runs == 2; got != tc.retried {
			t.Errorf("%v: %d runs, err %v; want retried: %v", tc.sentinel, runs, err, tc.retried)
		}
		if !tc.retried && !errors.Is(err, tc.sentinel) {
			t.Errorf("%v: err = %v, want the function's own error", tc.sentinel, err)
		}
		if got := racefree.IsRetryable(fmt.Errorf("wrapped: %w", tc.sentinel)); got != tc.retried {
			t.Errorf("IsRetryable(wrapped %v) = %v, want %v", tc.sentinel, got, tc.retried)
		}
	}
}
