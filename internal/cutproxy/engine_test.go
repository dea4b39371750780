package cutproxy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

// openVia opens the engine's database through a new proxy.
func openVia(t *testing.T, e testdb.Engine) (*lab.Worker, *cutproxy.Proxy) {
	t.Helper()
	dsn := e.DSN(t)
	addr, err := lab.ServerAddr(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := mustStart(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	w, err := lab.OpenWorker(ctx, dsn, lab.ConnOptions{Via: p.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, p
}

func servers(t *testing.T, f func(t *testing.T, e testdb.Engine)) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			f(t, e)
		})
	}
}

// The proxy recognises the COMMIT each driver really sends, and its two
// COMMIT cuts do what they claim on the real server: before, the
// transaction is rolled back; after, it is committed; the client gets an
// error both times.
func TestProxy_CommitCutsOnEngines(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY")
		ctx := context.Background()
		for i, tc := range []struct {
			kind      string
			committed bool
		}{{cutproxy.KindBeforeCommit, false}, {cutproxy.KindAfterCommit, true}} {
			tx, err := w.SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id) VALUES (%d)", table, i)); err != nil {
				t.Fatal(err)
			}
			p.ArmCommitCut(tc.kind)
			if err := tx.Commit(); err == nil {
				t.Errorf("%s: COMMIT returned no error", tc.kind)
			}
			n := testdb.QueryInt(t, w.DB, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE id = %d", table, i))
			if (n == 1) != tc.committed {
				t.Errorf("%s: %d rows, want committed = %v", tc.kind, n, tc.committed)
			}
			if got := p.Faults()[tc.kind]; got != 1 {
				t.Errorf("faults %v, want one %q", p.Faults(), tc.kind)
			}
		}
	})
}

// RunInTx must never run a transaction again after its COMMIT was sent:
// whether the cut came before or after the server got it, the function's
// effect is in the database at most once, and the caller gets either
// success or ErrCommitUnknown.
func TestRunInTx_CommitCutAppliesOnce(t *testing.T) {
	servers(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, time.Minute)
		w, p := openVia(t, e)
		table := testdb.CreateTable(t, w.DB, "cutproxy", "id BIGINT PRIMARY KEY, k BIGINT NOT NULL")
		ctx := context.Background()
		for k, kind := range []string{cutproxy.KindBeforeCommit, cutproxy.KindAfterCommit} {
			p.ArmCommitCut(kind)
			runs := 0
			err := racefree.RunInTx(ctx, w.DB, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				runs++
				_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, k) VALUES (%d, %d)", table, k*100+runs, k))
				return err
			})
			n := testdb.QueryInt(t, w.DB, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE k = %d", table, k))
			if n > 1 {
				t.Errorf("%s: applied %d times (function ran %d times, RunInTx returned %v)", kind, n, runs, err)
			}
			if err != nil && !errors.Is(err, racefree.ErrCommitUnknown) {
				t.Errorf("%s: RunInTx returned %v, want nil or ErrCommitUnknown", kind, err)
			}
			if p.Faults()[kind] != 1 {
				t.Errorf("%s: the cut did not happen (faults %v)", kind, p.Faults())
			}
		}
	})
}
