package racefree_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestGalera_GetOrCreateAcrossNodes: goroutines on every node of a Galera
// cluster race for the same keys. A conflicting insert on another node
// fails at certification (a deadlock error, retried); the lock strategy's
// named lock is a certified row write. Either way: one row per key, one
// creator, no error. The serializable strategy is refused there, because
// Galera certifies only write-write conflicts on the same rows, and two
// inserts of different rows never conflict.
func TestGalera_GetOrCreateAcrossNodes(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	defer testdb.Watchdog(t, 120*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	dbs := make([]*racefree.DB, len(dsns))
	for i, dsn := range dsns {
		dbs[i] = testdb.Open(t, dsn)
		dbs[i].SQL().SetMaxOpenConns(gocPool * 2)
	}
	for _, tc := range gocRaceCases[:2] { // constraint, lock
		t.Run(tc.name, func(t *testing.T) {
			table := mustRaceTable(t, dbs[0], tc.unique)
			time.Sleep(500 * time.Millisecond) // let the DDL reach every node
			var created atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for n, db := range dbs {
				for g := range gocGoroutines / 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := range gocCalls {
							c, err := gocCall(ctx, db, table, tc.strategy, n*gocGoroutines+g, i)
							if err != nil {
								t.Errorf("node %d: error surfaced: %v", n, err)
								return
							}
							if c {
								created.Add(1)
							}
						}
					}()
				}
			}
			close(start)
			wg.Wait()
			checkGocTable(t, dbs[0], table, created.Load())
		})
	}
	t.Run("SerializableRefused", func(t *testing.T) {
		table := mustRaceTable(t, dbs[0], false)
		_, _, err := racefree.GetOrCreate[racefree.Values](ctx, dbs[0], table, racefree.Values{"k": "x"}, nil,
			racefree.Options{Strategy: racefree.StrategySerializable})
		if !errors.Is(err, racefree.ErrStrategyUnavailable) {
			t.Fatalf("err = %v, want ErrStrategyUnavailable", err)
		}
	})
}
