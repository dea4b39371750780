package racefree_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestLease_DoRenews: a lease kept by Do outlives its TTL many times over,
// nobody else can acquire it meanwhile, and once fn returns it stays held
// until released.
func TestLease_DoRenews(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 30*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		name := testdb.UniqueName("do")
		// A TTL long enough that a renewal, due every third of it, is not
		// late on a loaded CI machine, whose scheduler can hold a
		// goroutine back for a hundred milliseconds.
		const ttl = time.Second
		l, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		err = l.Do(ctx, func(ctx context.Context, token int64) error {
			if token != l.Token() {
				t.Errorf("fn got token %d, the lease has %d", token, l.Token())
			}
			for range 3 {
				time.Sleep(ttl) // a TTL each
				if _, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
					t.Errorf("another holder got the lease while Do kept it: %v", err)
				}
			}
			return ctx.Err()
		})
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("release after Do: %v", err)
		}
	})
}

// TestLease_DoCancelsWhenLost: when someone else takes the lease (here:
// it expires unrenewed and is acquired), fn's context ends at the next
// renewal with a cause matching ErrLeaseLost, and Do says so.
func TestLease_DoCancelsWhenLost(t *testing.T) {
	defer testdb.Watchdog(t, 30*time.Second)()
	ctx := context.Background()
	db := testdb.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "lease.db"))
	l, err := racefree.AcquireLease(ctx, db, "job", racefree.LeaseOptions{TTL: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The lease is taken over behind Do's back: its token moves on.
	testdb.Exec(t, db, "UPDATE racefree_leases SET token = token + 1")
	start := time.Now()
	err = l.Do(ctx, func(ctx context.Context, token int64) error {
		select {
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), racefree.ErrLeaseLost) {
				t.Errorf("cause %v, want ErrLeaseLost", context.Cause(ctx))
			}
			return ctx.Err()
		case <-time.After(5 * time.Second):
			t.Error("fn's context was not canceled when the lease was lost")
			return nil
		}
	})
	if !errors.Is(err, racefree.ErrLeaseLost) {
		t.Fatalf("Do = %v, want ErrLeaseLost", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("the loss was noticed after %v, want within a renewal period (200ms)", waited)
	}
}
