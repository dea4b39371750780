package racefree_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/mysqldialect"
	"github.com/racefree/racefree/internal/testdb"
)

// TestGalera_Detect checks that racefree knows a Galera node for what it
// is: a MySQL-protocol server whose GET_LOCK excludes only its own node.
func TestGalera_Detect(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	db := testdb.Open(t, dsns[0])
	d, ok := db.Dialect().(*mysqldialect.Dialect)
	if !ok || !d.Galera() {
		t.Fatalf("dialect %T (%s) does not report Galera", db.Dialect(), db.Dialect().Server())
	}
	f := db.Dialect().Features()
	if !f.Has(dialect.NodeLocalNamedLocks) || f.Has(dialect.AdvisoryLocks) {
		t.Fatalf("%s: features %b claim cluster-wide named locks", d.Server(), f)
	}
}

// TestGalera_GetLockIsNodeLocal shows why: the same GET_LOCK name is granted
// on two nodes at once.
func TestGalera_GetLockIsNodeLocal(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	ctx := context.Background()
	name := testdb.UniqueName("lock")
	var granted []int
	for _, dsn := range dsns[:2] {
		conn, err := testdb.Open(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var got int
		if err := conn.SQL().QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		granted = append(granted, got)
	}
	if granted[0] != 1 || granted[1] != 1 {
		t.Fatalf("GET_LOCK on two nodes granted %v; Galera's node-local GET_LOCK would grant both", granted)
	}
}

// TestGalera_RunInTxRetriesCertificationFailures writes one counter from
// goroutines on two nodes. Row locks do not cross nodes: a conflicting
// commit fails certification with 1213, which RunInTx retries as a
// deadlock, so no increment is lost; the same increments in autocommit
// lose some.
func TestGalera_RunInTxRetriesCertificationFailures(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	testdb.Watchdog(t, 2*time.Minute)
	nodes := []*racefree.DB{testdb.Open(t, dsns[0]), testdb.Open(t, dsns[1])}
	const workers, iters = 8, 10
	for _, mode := range []string{"runintx", "autocommit"} {
		t.Run(mode, func(t *testing.T) {
			tbl := testdb.CreateTable(t, nodes[0], "gal", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL")
			testdb.Exec(t, nodes[0], "INSERT INTO "+tbl+" (id, n) VALUES (1, 0)")
			time.Sleep(200 * time.Millisecond) // let the row reach the other node
			var failed, deadlocks atomic.Int64
			var wg sync.WaitGroup
			for w := range 2 * workers {
				db := nodes[w%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
						if db.Classify(err).Class == dialect.ClassDeadlock {
							deadlocks.Add(1)
						}
					})}
					for range iters {
						var err error
						if mode == "runintx" {
							err = racefree.RunInTx(context.Background(), db, opts, func(ctx context.Context, tx *racefree.Tx) error {
								var n int
								if err := tx.QueryRowContext(ctx, "SELECT n FROM "+tbl+" WHERE id = 1 FOR UPDATE").Scan(&n); err != nil {
									return err
								}
								_, err := tx.ExecContext(ctx, "UPDATE "+tbl+" SET n = "+strconv.Itoa(n+1)+" WHERE id = 1")
								return err
							})
						} else {
							var n int
							if err = db.SQL().QueryRow("SELECT n FROM " + tbl + " WHERE id = 1").Scan(&n); err == nil {
								_, err = db.SQL().Exec("UPDATE " + tbl + " SET n = " + strconv.Itoa(n+1) + " WHERE id = 1")
							}
						}
						if err != nil {
							failed.Add(1)
							if mode == "runintx" {
								t.Logf("increment: %v", err)
							}
						}
					}
				}()
			}
			wg.Wait()
			time.Sleep(200 * time.Millisecond)
			want := int64(2*workers*iters) - failed.Load()
			got := testdb.QueryInt(t, nodes[0], "SELECT n FROM "+tbl+" WHERE id = 1")
			t.Logf("%s: %d of %d increments kept, %d failed, %d certification failures retried", mode, got, want, failed.Load(), deadlocks.Load())
			if mode == "runintx" {
				if failed.Load() != 0 || got != want {
					t.Fatalf("RunInTx across nodes: counter %d, want %d; %d failed", got, want, failed.Load())
				}
				if deadlocks.Load() == 0 {
					t.Fatal("no certification failure was retried: the test did not exercise the cluster")
				}
			} else if got == want {
				t.Fatalf("autocommit read-then-write across nodes lost nothing (%d): the control shows nothing", got)
			}
		})
	}
}
