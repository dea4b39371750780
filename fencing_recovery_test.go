package racefree_test

import (
	"context"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// A lease renewal or release whose answer is lost — run or not — is sent
// again, and the token decides: the holder keeps (or gives up) its lease
// and hears no error.
func TestLease_RenewReleaseRecoverLostAnswers(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			base := e.Open(t)
			ctx := context.Background()
			for _, f := range []fault{lostBefore, lostAfter} {
				fp := &faultPool{Pool: session.SQLPool{DB: base.SQL()}}
				db, err := racefree.NewSession(ctx, fp, base.Dialect())
				if err != nil {
					t.Fatal(err)
				}
				l, err := racefree.AcquireLease(ctx, db, testdb.UniqueName("lostlease"), racefree.LeaseOptions{TTL: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				fp.plan = once("UPDATE", "SET writes", f)
				if err := l.Renew(ctx); err != nil || fp.faults != 1 {
					t.Errorf("fault %d: Renew = %v after %d faults, want nil after 1", f, err, fp.faults)
				}
				fp.plan = once("UPDATE", "SET expires_ms = 0", f)
				if err := l.Release(ctx); err != nil || fp.faults != 2 {
					t.Errorf("fault %d: Release = %v after %d faults, want nil after 2", f, err, fp.faults)
				}
				fp.plan = nil
				l2, err := racefree.AcquireLease(ctx, base, l.Name(), racefree.LeaseOptions{Wait: racefree.Wait{Try: true}})
				if err != nil || l2.Token() != l.Token()+1 {
					t.Errorf("fault %d: after the release, AcquireLease = %v (token %v, want %d)", f, err, l2, l.Token()+1)
				} else {
					l2.Release(ctx)
				}
			}
		})
	}
}
