package racefree_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestGetOrCreate_Coalesce: 64 goroutines ask for one missing key with
// Coalesce while the first call is held up before its INSERT: the others
// share its trip, one row is created, exactly one caller sees created, and
// nobody gets an error.
func TestGetOrCreate_Coalesce(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_coal", gocUsersDDL)
		var once sync.Once
		inFlight := make(chan struct{})
		restore := racefree.SetGetOrCreateHooks(func() {
			once.Do(func() {
				close(inFlight)
				time.Sleep(200 * time.Millisecond) // hold the leader while the others arrive
			})
		}, nil)
		defer restore()
		before := racefree.CoalescedCalls(db)
		var created atomic.Int32
		var wg sync.WaitGroup
		call := func() {
			defer wg.Done()
			u, c, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"email": "hot@x"}, racefree.Values{"name": "n"}, racefree.Options{Coalesce: true})
			if err != nil || u["email"] != "hot@x" {
				t.Errorf("row %v err %v", u, err)
			}
			if c {
				created.Add(1)
			}
		}
		wg.Add(1)
		go call()
		<-inFlight
		for range gocGoroutines - 1 {
			wg.Add(1)
			go call()
		}
		wg.Wait()
		if created.Load() != 1 {
			t.Errorf("created reported %d times, want 1", created.Load())
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Errorf("rows = %d, want 1", n)
		}
		if got := racefree.CoalescedCalls(db) - before; got == 0 {
			t.Errorf("no call was coalesced")
		} else {
			t.Logf("%s: %d of %d calls shared the first one's trip", e.Name, got, gocGoroutines)
		}
	})
}
