package racefree_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// txBody is the guarded work: count, insert if below the limit.
type txBody = racefree.TxFunc

// galeraLimit runs workers on every Galera node that each insert a row if
// the table has fewer than 10, the way run says (run must call RunInTx with
// body), and returns the row count. Inserts of different rows never
// conflict at certification, so only a lock that really crosses nodes
// keeps the limit.
func galeraLimit(t *testing.T, run func(ctx context.Context, db *racefree.DB, body txBody) error) int64 {
	t.Helper()
	dsns := testdb.GaleraDSNs(t)
	dbs := make([]*racefree.DB, len(dsns))
	for i, dsn := range dsns {
		dbs[i] = testdb.Open(t, dsn)
	}
	table := testdb.CreateTable(t, dbs[0], "glimit", "id {{id}}, who {{text}}")
	time.Sleep(200 * time.Millisecond) // DDL reaches every node
	ctx := context.Background()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, db := range dbs {
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := run(ctx, db, func(ctx context.Context, tx *racefree.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
						return err
					}
					if n >= 10 {
						return nil
					}
					_, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (who) VALUES (?)", strconv.Itoa(i*100+w))
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	// Let the last writes apply on node 0 before counting.
	time.Sleep(200 * time.Millisecond)
	return testdb.QueryInt(t, dbs[0], "SELECT COUNT(*) FROM "+table)
}

// TestGalera_LockNamedAcrossNodes: LockNamed's lock-table row is certified
// cluster-wide, so workers on three nodes keep a count-then-insert limit.
func TestGalera_LockNamedAcrossNodes(t *testing.T) {
	defer testdb.Watchdog(t, 120*time.Second)()
	name := testdb.UniqueName("glock")
	got := galeraLimit(t, func(ctx context.Context, db *racefree.DB, body txBody) error {
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := racefree.LockNamed(ctx, tx, name, racefree.LockOptions{}); err != nil {
				return err
			}
			return body(ctx, tx)
		})
	})
	if got != 10 {
		t.Fatalf("%d rows under a limit of 10 with LockNamed across Galera nodes", got)
	}
}

// TestGalera_LimitWithoutLockExceeds shows that the test above can fail.
func TestGalera_LimitWithoutLockExceeds(t *testing.T) {
	defer testdb.Watchdog(t, 120*time.Second)()
	for range 5 {
		got := galeraLimit(t, func(ctx context.Context, db *racefree.DB, body txBody) error {
			return racefree.RunInTx(ctx, db, racefree.TxOptions{}, body)
		})
		if got > 10 {
			t.Logf("without a lock: %d rows under a limit of 10", got)
			return
		}
	}
	t.Fatal("the limit held without a lock in 5 rounds: the Galera lock tests prove nothing")
}

// TestGalera_LeaseAcrossNodes: a lease checked in the guarded transaction
// keeps the limit across nodes too.
func TestGalera_LeaseAcrossNodes(t *testing.T) {
	defer testdb.Watchdog(t, 120*time.Second)()
	name := testdb.UniqueName("glease")
	got := galeraLimit(t, func(ctx context.Context, db *racefree.DB, body txBody) error {
		l, err := racefree.AcquireLease(ctx, db, name, racefree.LeaseOptions{TTL: 10 * time.Second})
		if err != nil {
			return err
		}
		defer l.Release(ctx)
		return racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			if err := l.Check(ctx, tx); err != nil {
				return err
			}
			return body(ctx, tx)
		})
	})
	if got != 10 {
		t.Fatalf("%d rows under a limit of 10 with a lease across Galera nodes", got)
	}
}

func TestGalera_LockSessionRefused(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	db := testdb.Open(t, dsns[0])
	_, err := racefree.AcquireSessionLock(context.Background(), db, "x", racefree.LockOptions{})
	if !errors.Is(err, racefree.ErrLockUnsupported) {
		t.Fatalf("GET_LOCK is node-local on Galera: want ErrLockUnsupported, got %v", err)
	}
}
