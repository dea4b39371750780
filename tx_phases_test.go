package racefree_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/fakedb"
)

// lost is a connection cut under a statement: it may have run.
var lost = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// refused is a connection that could not be opened: nothing was sent.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// RunInTx decides by phase what it runs again: every retried attempt
// certainly did not commit, and a COMMIT that may have is never retried.
func TestRunInTx_PhaseRules(t *testing.T) {
	first := func(err error) func(int) error {
		return func(n int) error {
			if n == 1 {
				return err
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name        string
		hooks       fakedb.Hooks
		stmtErr     error // what the body's first statement returns
		wantRuns    int   // times the body ran
		wantUnknown bool
		wantErr     bool
	}{
		{name: "connection lost under BEGIN is retried", hooks: fakedb.Hooks{Begin: first(lost)}, wantRuns: 1},
		{name: "server unavailable at BEGIN is retried", hooks: fakedb.Hooks{Begin: first(refused)}, wantRuns: 1},
		{name: "not sent at BEGIN is retried", hooks: fakedb.Hooks{Begin: first(driver.ErrBadConn)}, wantRuns: 1},
		{name: "connection lost under a statement, connection dead, is retried",
			hooks: fakedb.Hooks{Rollback: first(io.ErrUnexpectedEOF)}, stmtErr: lost, wantRuns: 2},
		{name: "connection lost under a statement, connection alive, is returned",
			stmtErr: lost, wantRuns: 1, wantErr: true},
		{name: "unavailable from a statement is retried", stmtErr: refused, wantRuns: 2},
		{name: "ErrBadConn at COMMIT is retried", hooks: fakedb.Hooks{Commit: first(driver.ErrBadConn)}, wantRuns: 2},
		{name: "serialization failure at COMMIT is retried", hooks: fakedb.Hooks{Commit: first(serverErr(dialect.ClassSerialization))}, wantRuns: 2},
		{name: "a driver's 'not sent' at COMMIT is unknown",
			hooks: fakedb.Hooks{Commit: first(&fakedb.ServerError{Class: dialect.ClassNotSent})}, wantRuns: 1, wantUnknown: true},
		{name: "connection lost at COMMIT is unknown", hooks: fakedb.Hooks{Commit: first(lost)}, wantRuns: 1, wantUnknown: true},
		{name: "the server ending the session at COMMIT is unknown",
			hooks: fakedb.Hooks{Commit: first(&fakedb.ServerError{Class: dialect.ClassConnection, Code: "57P01"})}, wantRuns: 1, wantUnknown: true},
		{name: "a server error at COMMIT is known", hooks: fakedb.Hooks{Commit: first(serverErr(dialect.ClassOther))}, wantRuns: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, fake := mustFake(t, tc.hooks)
			runs := 0
			err := racefree.RunInTx(context.Background(), db, fast, func(ctx context.Context, tx *racefree.Tx) error {
				runs++
				if runs == 1 && tc.stmtErr != nil {
					return tc.stmtErr
				}
				_, err := tx.ExecContext(ctx, "UPDATE t SET n = n + 1")
				return err
			})
			if runs != tc.wantRuns {
				t.Errorf("body ran %d times, want %d (err %v)", runs, tc.wantRuns, err)
			}
			if got := errors.Is(err, racefree.ErrCommitUnknown); got != tc.wantUnknown {
				t.Errorf("err = %v: ErrCommitUnknown %v, want %v", err, got, tc.wantUnknown)
			}
			if got := err != nil && !tc.wantUnknown; got != tc.wantErr {
				t.Errorf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if calls := fake.Calls(); calls.Commit > 1 && tc.wantUnknown {
				t.Errorf("COMMIT sent %d times after an unknown outcome", calls.Commit)
			}
		})
	}
}

// On a pinned connection a lost connection is not retried: the
// connection is gone, and another attempt on it cannot succeed.
func TestRunInTx_ConnDoesNotRetryLostConnection(t *testing.T) {
	db, _ := mustFake(t, fakedb.Hooks{Rollback: func(int) error { return io.ErrUnexpectedEOF }})
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	runs := 0
	err = racefree.RunInTx(context.Background(), conn, fast, func(context.Context, *racefree.Tx) error {
		runs++
		return lost
	})
	if runs != 1 || !errors.Is(err, racefree.ErrConnection) {
		t.Fatalf("ran %d times, err %v; want 1 run and ErrConnection", runs, err)
	}
}

// An outage is waited out on its own, longer scale, and the wait still
// ends with the budget.
func TestRunInTx_OutageBackoff(t *testing.T) {
	down := 4
	db, _ := mustFake(t, fakedb.Hooks{Begin: func(n int) error {
		if n <= down {
			return refused
		}
		return nil
	}})
	var delays []time.Duration
	opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond,
		OutageBaseDelay: 2 * time.Millisecond, OutageMaxDelay: 8 * time.Millisecond}, func(_ int, err error, d time.Duration) {
		if !errors.Is(err, racefree.ErrUnavailable) {
			t.Errorf("retried %v, want ErrUnavailable", err)
		}
		delays = append(delays, d)
	})}
	err := racefree.RunInTx(context.Background(), db, opts, func(context.Context, *racefree.Tx) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(delays) != down {
		t.Fatalf("%d pauses, want %d", len(delays), down)
	}
	var longest time.Duration
	for i, d := range delays {
		if ceiling := min(2*time.Millisecond<<i, 8*time.Millisecond); d > ceiling {
			t.Errorf("pause %d = %v, above its ceiling %v", i+1, d, ceiling)
		}
		longest = max(longest, d)
	}
	if longest <= time.Nanosecond {
		t.Errorf("pauses %v: on the contention scale, not the outage scale", delays)
	}

	// The wait is bounded by time, not attempts (MaxAttempts 1 aside).
	backoff := racefree.Backoff{OutageBaseDelay: time.Millisecond, OutageMaxDelay: time.Millisecond, MaxAttempts: 3, MaxElapsed: 50 * time.Millisecond}
	opts = racefree.TxOptions{Retry: backoff}
	db, _ = mustFake(t, fakedb.Hooks{Begin: func(int) error { return refused }})
	err = racefree.RunInTx(context.Background(), db, opts, func(context.Context, *racefree.Tx) error { return nil })
	var re *racefree.RetryError
	if !errors.As(err, &re) || re.Attempts <= 3 || !errors.Is(err, racefree.ErrTimeBudgetSpent) || !errors.Is(err, racefree.ErrUnavailable) {
		t.Fatalf("err = %v, want a RetryError after more than 3 attempts, the time budget spent, holding ErrUnavailable", err)
	}
	backoff.MaxAttempts = 1
	opts.Retry = backoff
	err = racefree.RunInTx(context.Background(), db, opts, func(context.Context, *racefree.Tx) error { return nil })
	if !errors.As(err, &re) || re.Attempts != 1 {
		t.Fatalf("MaxAttempts 1: err = %v, want one attempt", err)
	}
}

// resolving is the fake dialect with a CommitResolver whose answers are
// scripted.
type resolving struct {
	fakedb.Dialect
	states []dialect.TxState
	asked  *int
}

func (resolving) TxIDSQL() (string, bool) { return "SELECT id", true }

func (r resolving) TxStatus(context.Context, dialect.Querier, string) (dialect.TxState, error) {
	i := *r.asked
	*r.asked++
	if i >= len(r.states) {
		return dialect.TxStateUnknown, errors.New("no more answers")
	}
	return r.states[i], nil
}

// VerifyCommit settles a COMMIT whose answer was lost by asking the
// server: committed is success, rolled back runs again, in progress asks
// again, unknown stays ErrCommitUnknown.
func TestRunInTx_VerifyCommit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		states      []dialect.TxState
		noID        bool
		wantRuns    int
		wantUnknown bool
	}{
		{name: "committed", states: []dialect.TxState{dialect.TxCommitted}, wantRuns: 1},
		{name: "rolled back runs again", states: []dialect.TxState{dialect.TxAborted}, wantRuns: 2},
		{name: "in progress, then committed", states: []dialect.TxState{dialect.TxInProgress, dialect.TxInProgress, dialect.TxCommitted}, wantRuns: 1},
		{name: "the server cannot say", states: []dialect.TxState{dialect.TxStateUnknown}, wantRuns: 1, wantUnknown: true},
		{name: "no id: wrote nothing", noID: true, wantRuns: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := []driver.Value{"42"}
			if tc.noID {
				id = []driver.Value{nil}
			}
			srv := fakedb.NewServer(fakedb.Reply{Match: "SELECT id", Columns: []string{"id"}, Rows: [][]driver.Value{id}})
			sqlDB, _ := fakedb.Open(fakedb.Hooks{
				Commit: func(n int) error {
					if n == 1 {
						return lost
					}
					return nil
				},
				Server: srv,
			})
			t.Cleanup(func() { sqlDB.Close() })
			asked := 0
			db, err := racefree.New(context.Background(), sqlDB, resolving{states: tc.states, asked: &asked})
			if err != nil {
				t.Fatal(err)
			}
			opts := fast
			opts.VerifyCommit = true
			runs := 0
			err = racefree.RunInTx(context.Background(), db, opts, func(context.Context, *racefree.Tx) error {
				runs++
				return nil
			})
			if runs != tc.wantRuns {
				t.Errorf("body ran %d times, want %d", runs, tc.wantRuns)
			}
			if got := errors.Is(err, racefree.ErrCommitUnknown); got != tc.wantUnknown || !tc.wantUnknown && err != nil {
				t.Errorf("err = %v, want unknown: %v", err, tc.wantUnknown)
			}
			if tc.noID && asked != 0 {
				t.Errorf("asked the server %d times about a transaction without an id", asked)
			}
			if got := srv.Count("SELECT id"); got != tc.wantRuns {
				t.Errorf("%d id reads, want one per attempt (%d)", got, tc.wantRuns)
			}
		})
	}
	t.Run("RefusedWithoutResolver", func(t *testing.T) {
		db, _ := mustFake(t, fakedb.Hooks{})
		err := racefree.RunInTx(context.Background(), db, racefree.TxOptions{VerifyCommit: true}, func(context.Context, *racefree.Tx) error { return nil })
		if !errors.Is(err, racefree.ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
	})
}
