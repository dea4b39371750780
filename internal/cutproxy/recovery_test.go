package cutproxy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/testdb"
)

// A connection cut under a statement of the transaction, before COMMIT
// was sent: the server rolls the transaction back, and RunInTx runs it
// again on a new connection. The caller sees success, and the work is in
// the database once.
func TestRunInTx_CutBeforeCommitIsRunAgain(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY, k BIGINT NOT NULL")
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		runs := 0
		err := racefree.RunInTx(ctx, w.DB, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			runs++
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, k) VALUES (%d, 1)", table, runs)); err != nil {
				return err
			}
			if runs == 1 {
				for p.Cut(rng) { // every connection: the transaction's among them
				}
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET k = 2 WHERE id = %d", table, runs))
			return err
		})
		if err != nil {
			t.Fatalf("RunInTx = %v, want the cut recovered", err)
		}
		if runs != 2 {
			t.Errorf("the function ran %d times, want 2", runs)
		}
		if n := testdb.QueryInt(t, w.DB, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Errorf("%d rows, want 1: the cut transaction was rolled back, the second committed", n)
		}
		if p.Faults()[cutproxy.KindCut] == 0 {
			t.Error("no cut happened")
		}
	})
}

// TxOptions.VerifyCommit settles both COMMIT cuts on PostgreSQL: the
// server says whether the transaction committed, so that the caller gets
// success and the work is in the database exactly once — run again after
// the cut before COMMIT reached the server, not after the one whose
// answer was dropped.
func TestRunInTx_VerifyCommitSettlesCuts(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	testdb.Watchdog(t, time.Minute)
	w, p := openVia(t, e)
	table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY, k BIGINT NOT NULL")
	ctx := context.Background()
	for k, tc := range []struct {
		kind     string
		wantRuns int
	}{{cutproxy.KindBeforeCommit, 2}, {cutproxy.KindAfterCommit, 1}} {
		runs := 0
		p.ArmCommitCut(tc.kind)
		err := racefree.RunInTx(ctx, w.DB, racefree.TxOptions{VerifyCommit: true}, func(ctx context.Context, tx *racefree.Tx) error {
			runs++
			_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, k) VALUES (%d, %d)", table, k*100+runs, k))
			return err
		})
		if err != nil {
			t.Errorf("%s: RunInTx = %v, want the outcome settled", tc.kind, err)
		}
		if runs != tc.wantRuns {
			t.Errorf("%s: the function ran %d times, want %d", tc.kind, runs, tc.wantRuns)
		}
		if n := testdb.QueryInt(t, w.DB, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE k = %d", table, k)); n != 1 {
			t.Errorf("%s: applied %d times, want once", tc.kind, n)
		}
		if p.Faults()[tc.kind] != 1 {
			t.Errorf("%s: the cut did not happen (faults %v)", tc.kind, p.Faults())
		}
	}
}
