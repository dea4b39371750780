package racefree_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/fakedb"
)

func mustFake(t *testing.T, hooks fakedb.Hooks) (*racefree.DB, *fakedb.DB) {
	t.Helper()
	sqlDB, fake := fakedb.Open(hooks)
	t.Cleanup(func() { sqlDB.Close() })
	db, err := racefree.New(context.Background(), sqlDB, fakedb.Dialect{})
	if err != nil {
		t.Fatal(err)
	}
	return db, fake
}

func serverErr(c dialect.Class) error { return &fakedb.ServerError{Class: c, Code: "X"} }

// fastBackoff keeps backoff pauses short in unit tests; fast is RunInTx's
// options with it.
var (
	fastBackoff = racefree.Backoff{BaseDelay: time.Microsecond, MaxDelay: time.Microsecond}
	fast        = racefree.TxOptions{Retry: fastBackoff}
)

// onRetry is policy b that also calls f before each retry it allows, with
// the failed attempt's number, its error and the pause: how tests count
// and inspect retries.
func onRetry(b racefree.Backoff, f func(attempt int, err error, delay time.Duration)) racefree.RetryPolicy {
	return racefree.RetryFunc(func(a racefree.FailedAttempt) (time.Duration, error) {
		delay, stop := b.NextRetry(a)
		if stop == nil {
			f(a.Attempt, a.Err, delay)
		}
		return delay, stop
	})
}

func TestRunInTx_RetriesRetryableClasses(t *testing.T) {
	for _, c := range []dialect.Class{dialect.ClassSerialization, dialect.ClassDeadlock, dialect.ClassBusy, dialect.ClassNotSent} {
		t.Run(c.String(), func(t *testing.T) {
			db, fake := mustFake(t, fakedb.Hooks{})
			calls, retries := 0, 0
			opts := racefree.TxOptions{Retry: onRetry(fastBackoff, func(attempt int, err error, _ time.Duration) {
				retries++
				if attempt != retries || db.Classify(err).Class != c {
					t.Errorf("retry after attempt %d (%v), want attempt %d of class %v", attempt, err, retries, c)
				}
			})}
			err := racefree.RunInTx(context.Background(), db, opts, func(context.Context, *racefree.Tx) error {
				if calls++; calls < 3 {
					return serverErr(c)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != 3 || retries != 2 {
				t.Fatalf("calls %d, retries %d; want 3 and 2", calls, retries)
			}
			if got := fake.Calls(); got.Commit != 1 || got.Rollback != 2 {
				t.Fatalf("driver calls %+v, want 1 commit and 2 rollbacks", got)
			}
		})
	}
}

func TestRunInTx_DoesNotRetryOthers(t *testing.T) {
	mine := errors.New("mine")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{name: "unique violation", err: serverErr(dialect.ClassUniqueViolation)},
		{name: "lock timeout", err: serverErr(dialect.ClassLockNotAcquired)},
		{name: "connection lost", err: serverErr(dialect.ClassConnection)},
		{name: "canceled", err: context.Canceled},
		{name: "callers own error", err: mine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := mustFake(t, fakedb.Hooks{})
			calls := 0
			err := racefree.RunInTx(context.Background(), db, fast, func(context.Context, *racefree.Tx) error {
				calls++
				return tc.err
			})
			if !errors.Is(err, tc.err) || calls != 1 {
				t.Fatalf("err %v after %d calls; want %v after 1", err, calls, tc.err)
			}
			if err.Error() != tc.err.Error() {
				t.Fatalf("message changed: %q, want %q", err, tc.err)
			}
		})
	}
}

func TestRunInTx_BudgetSpent(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{})
	always := func(context.Context, *racefree.Tx) error { return serverErr(dialect.ClassDeadlock) }

	t.Run("Attempts", func(t *testing.T) {
		b := fastBackoff
		b.MaxAttempts = 3
		opts := racefree.TxOptions{Retry: b}
		err := racefree.RunInTx(context.Background(), db, opts, always)
		var re *racefree.RetryError
		if !errors.As(err, &re) || re.Attempts != 3 {
			t.Fatalf("err = %v, want *RetryError after 3 attempts", err)
		}
		if !errors.Is(err, racefree.ErrAttemptsExhausted) || !errors.Is(err, racefree.ErrDeadlock) {
			t.Fatalf("err = %v: want both ErrAttemptsExhausted and the last error's class", err)
		}
		if !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), "deadlock") {
			t.Fatalf("message %q does not say how many attempts and what failed", err)
		}
	})
	t.Run("Time", func(t *testing.T) {
		b := fastBackoff
		b.MaxElapsed = time.Nanosecond
		opts := racefree.TxOptions{Retry: b}
		err := racefree.RunInTx(context.Background(), db, opts, always)
		if !errors.Is(err, racefree.ErrTimeBudgetSpent) || !errors.Is(err, racefree.ErrDeadlock) {
			t.Fatalf("err = %v, want ErrTimeBudgetSpent and ErrDeadlock", err)
		}
	})
	t.Run("ContextEndsWhilePausing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		opts := racefree.TxOptions{Retry: racefree.Backoff{BaseDelay: time.Hour, MaxDelay: time.Hour, MaxElapsed: 2 * time.Hour}}
		start := time.Now()
		err := racefree.RunInTx(ctx, db, opts, always)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, racefree.ErrDeadlock) {
			t.Fatalf("err = %v, want the context's error and the last error", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("RunInTx slept past its context")
		}
	})
	t.Run("ContextCanceledWhilePausing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		opts := racefree.TxOptions{Retry: racefree.Backoff{BaseDelay: time.Hour, MaxDelay: time.Hour, MaxElapsed: 2 * time.Hour}}
		err := racefree.RunInTx(ctx, db, opts, always)
		var re *racefree.RetryError
		if !errors.As(err, &re) || !errors.Is(re.Reason, context.Canceled) || !errors.Is(err, racefree.ErrDeadlock) {
			t.Fatalf("err = %v, want a RetryError for context.Canceled holding the deadlock", err)
		}
	})
}

func TestRunInTx_CommitFailures(t *testing.T) {
	for _, tc := range []struct {
		name        string
		commitErr   error
		wantUnknown bool
		wantCalls   int
	}{
		{name: "not sent is retried", commitErr: driver.ErrBadConn, wantCalls: 2},
		{name: "serialization at commit is retried", commitErr: serverErr(dialect.ClassSerialization), wantCalls: 2},
		{name: "connection lost is unknown", commitErr: io.ErrUnexpectedEOF, wantUnknown: true, wantCalls: 1},
		{name: "unclassified driver error is unknown", commitErr: errors.New("weird"), wantUnknown: true, wantCalls: 1},
		{name: "server answer is known", commitErr: serverErr(dialect.ClassOther), wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := mustFake(t, fakedb.Hooks{Commit: func(n int) error {
				if n == 1 {
					return tc.commitErr
				}
				return nil
			}})
			calls := 0
			err := racefree.RunInTx(context.Background(), db, fast, func(context.Context, *racefree.Tx) error {
				calls++
				return nil
			})
			if calls != tc.wantCalls {
				t.Fatalf("body ran %d times, want %d (err %v)", calls, tc.wantCalls, err)
			}
			var unknown *racefree.CommitUnknownError
			if got := errors.As(err, &unknown); got != tc.wantUnknown {
				t.Fatalf("err = %v; CommitUnknownError: %v, want %v", err, got, tc.wantUnknown)
			}
			if tc.wantUnknown && !errors.Is(err, racefree.ErrCommitUnknown) {
				t.Fatal("errors.Is(err, ErrCommitUnknown) = false")
			}
			if !tc.wantUnknown && tc.wantCalls == 1 && err == nil {
				t.Fatal("a failed commit returned nil")
			}
		})
	}
}

func TestRunInTx_PanicRollsBack(t *testing.T) {
	db, fake := mustFake(t, fakedb.Hooks{})
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
		if got := fake.Calls(); got.Rollback != 1 || got.Commit != 0 {
			t.Fatalf("driver calls %+v, want 1 rollback, 0 commits", got)
		}
	}()
	_ = racefree.RunInTx(context.Background(), db, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error {
		panic("boom")
	})
}

func TestRunInTx_NestedIsNotRetriedAlone(t *testing.T) {
	db, fake := mustFake(t, fakedb.Hooks{})
	outer, inner := 0, 0
	err := racefree.RunInTx(context.Background(), db, fast, func(ctx context.Context, tx *racefree.Tx) error {
		outer++
		return racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error {
			if inner++; inner == 1 {
				return serverErr(dialect.ClassSerialization)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if outer != 2 || inner != 2 {
		t.Fatalf("outer ran %d, inner %d; want the whole transaction retried: 2 and 2", outer, inner)
	}
	// SAVEPOINT, then SAVEPOINT + RELEASE: a serialization failure dooms
	// the transaction, so no ROLLBACK TO is sent before the ROLLBACK. (The
	// fake engine's failed statements do not abort the transaction, so its
	// savepoints are all released.)
	if got := fake.Calls().Exec; got != 3 {
		t.Fatalf("%d savepoint statements, want 3", got)
	}
}

// TestRunInTx_DoomedTransactionRunsAgain: a serialization failure or a
// deadlock in a savepoint dooms the transaction RunInTx began, so it runs
// again even when fn swallows the error (returns nil, or an error of its
// own after going on): it is neither committed nor reported as fn's error.
func TestRunInTx_DoomedTransactionRunsAgain(t *testing.T) {
	for _, class := range []dialect.Class{dialect.ClassSerialization, dialect.ClassDeadlock} {
		for _, swallow := range []string{"nil", "own error"} {
			t.Run(class.String()+"/"+swallow, func(t *testing.T) {
				db, fake := mustFake(t, fakedb.Hooks{})
				errOwn := errors.New("fn's own error, after going on")
				attempts := 0
				err := racefree.RunInTx(context.Background(), db, fast, func(ctx context.Context, tx *racefree.Tx) error {
					attempts++
					if attempts > 1 {
						return nil
					}
					nested := racefree.RunInTx(ctx, tx, racefree.TxOptions{}, func(context.Context, *racefree.Tx) error {
						return serverErr(class)
					})
					if !errors.Is(nested, racefree.ErrSerialization) && !errors.Is(nested, racefree.ErrDeadlock) {
						t.Errorf("nested: %v", nested)
					}
					if swallow == "nil" {
						return nil
					}
					return errOwn
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := fake.Calls(); attempts != 2 || got.Commit != 1 || got.Rollback != 1 {
					t.Fatalf("%d attempts, driver calls %+v; want 2 attempts, 1 rollback, 1 commit", attempts, got)
				}
			})
		}
	}
}

func TestNew_BadInput(t *testing.T) {
	if _, err := racefree.New(context.Background(), nil, fakedb.Dialect{}); err == nil || !strings.Contains(err.Error(), "nil *sql.DB") {
		t.Fatalf("New(nil db) = %v", err)
	}
	sqlDB, _ := fakedb.Open(fakedb.Hooks{})
	defer sqlDB.Close()
	if _, err := racefree.New(context.Background(), sqlDB, nil); err == nil || !strings.Contains(err.Error(), "nil dialect") {
		t.Fatalf("New(nil dialect) = %v", err)
	}
}

func TestOpen_BadDSN(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{dsn: "", want: "empty DSN"},
		{dsn: "oracle://scott@db/orcl", want: `unknown DSN scheme "oracle"`},
		{dsn: "redis:6379", want: `unknown DSN scheme "redis"`},
		{dsn: "mysql://", want: "no host"},
		{dsn: "postgres://user@127.0.0.1:1/x?sslmode=bogus", want: "sslmode"},
		{dsn: "sqlite:", want: "no file path"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			db, err := racefree.Open(context.Background(), tc.dsn)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tc.dsn)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) = %v, want it to mention %q", tc.dsn, err, tc.want)
			}
		})
	}
}
