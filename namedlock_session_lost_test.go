package racefree_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// A session lock whose session dies is reported lost to its holder while
// it works: Do cancels fn's context, with ErrLockLost as the cause, and
// returns ErrLockLost; a lock that stays held lets fn finish untouched.
func TestSessionLock_DoReportsLoss(t *testing.T) {
	forSessionLocks(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, time.Minute)()
		db, admin := e.Open(t), e.Open(t)
		ctx := context.Background()
		db.SQL().SetMaxOpenConns(1) // the lock's session is the one whose id is read
		var session int64
		sessionID := "SELECT pg_backend_pid()"
		if e.Name != "postgres" {
			sessionID = "SELECT CONNECTION_ID()"
		}
		if err := db.SQL().QueryRowContext(ctx, sessionID).Scan(&session); err != nil {
			t.Fatal(err)
		}
		l, err := racefree.AcquireSessionLock(ctx, db, testdb.UniqueName("do"), racefree.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ran := false
		if err := l.Do(ctx, func(ctx context.Context) error { ran = true; return nil }); err != nil || !ran {
			t.Fatalf("Do on a held lock: ran %v, %v", ran, err)
		}
		start := time.Now()
		var cause error
		err = l.Do(ctx, func(ctx context.Context) error {
			if e.Name == "postgres" {
				testdb.Exec(t, admin, "SELECT pg_terminate_backend($1)", session)
			} else {
				testdb.Exec(t, admin, "KILL "+strconv.FormatInt(session, 10))
			}
			select {
			case <-ctx.Done():
				cause = context.Cause(ctx)
				return ctx.Err()
			case <-time.After(20 * time.Second):
				return errors.New("fn's context never ended")
			}
		})
		if !errors.Is(err, racefree.ErrLockLost) || !errors.Is(cause, racefree.ErrLockLost) {
			t.Fatalf("Do on a lock whose session was killed: %v (cause %v), want ErrLockLost", err, cause)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Errorf("the loss was reported after %v, want within about a second", waited)
		}
		if err := l.Check(ctx); !errors.Is(err, racefree.ErrLockLost) {
			t.Errorf("Held after the loss: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Errorf("Unlock after the loss: %v", err)
		}
		if st := db.SQL().Stats(); st.OpenConnections != 0 {
			t.Errorf("the dead connection stayed in the pool: %+v", st)
		}
	})
}
