package racefree_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// TestGetOrCreate_Coalesce: 64 goroutines ask for one missing key while
// the first call is held up before its INSERT: with coalescing on (the
// default) the others share its trip, one row is created, exactly one
// caller sees created, and nobody gets an error. On SQLite, where a
// hand-off costs more than the call, nothing is coalesced.
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
			u, c, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"email": "hot@x"}, racefree.Values{"name": "n"}, racefree.Options{})
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
		got := racefree.CoalescedCalls(db) - before
		switch embedded := db.Dialect().Features().Has(dialect.Embedded); {
		case embedded && got != 0:
			t.Errorf("%d calls coalesced on an embedded engine", got)
		case !embedded && got == 0:
			t.Errorf("no call was coalesced")
		}
		t.Logf("%s: %d of %d calls shared the first one's trip", e.Name, got, gocGoroutines)
	})
}

// TestGetOrCreate_CoalesceOnlyOnThePool: NoCoalesce, a *Tx and a *Conn
// never share a trip.
func TestGetOrCreate_CoalesceOnlyOnThePool(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	defer testdb.Watchdog(t, 60*time.Second)()
	ctx := context.Background()
	db := e.Open(t)
	table := testdb.CreateTable(t, db, "goc_nocoal", gocUsersDDL)
	var once sync.Once
	inFlight := make(chan struct{})
	restore := racefree.SetGetOrCreateHooks(func() {
		once.Do(func() { close(inFlight); time.Sleep(100 * time.Millisecond) })
	}, nil)
	defer restore()
	before := racefree.CoalescedCalls(db)
	var wg sync.WaitGroup
	run := func(ex racefree.Executor, opts racefree.Options) {
		defer wg.Done()
		if _, _, err := racefree.GetOrCreate[racefree.Values](ctx, ex, table, racefree.Values{"email": "x@x"}, nil, opts); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go run(db, racefree.Options{})
	<-inFlight
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wg.Add(2)
	go run(db, racefree.Options{NoCoalesce: true})
	go run(conn, racefree.Options{})
	wg.Wait()
	if got := racefree.CoalescedCalls(db) - before; got != 0 {
		t.Fatalf("%d calls coalesced, want none", got)
	}
}
