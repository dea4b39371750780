package racefree_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// The round-trip test: on MariaDB a batch must cost a bounded number of
// statements however many other batches insert the same keys at once.
// Each batch runs on its own *Conn, so the server's per-session Questions
// counter, read before and after, counts exactly the statements it sent.
const (
	// rtMaxStatements is the bound: SELECT, SET TRANSACTION, START
	// TRANSACTION, INSERT IGNORE … RETURNING, SELECT @@warning_count, the
	// re-read of the keys lost, COMMIT.
	rtMaxStatements = 7
	rtGoroutines    = 8 // per process
	rtRounds        = 12
	rtKeys          = 48 // new keys per round, shared by every batch of the round
	rtBatch         = 40 // items per batch, drawn from the round's keys with repeats
)

func TestGetOrCreateMany_RoundTripsUnderContention(t *testing.T) {
	e, _ := testdb.Get("mysql")
	e.Require(t)
	defer testdb.Watchdog(t, 150*time.Second)()
	dsn := e.DSN(t)
	db := testdb.Open(t, dsn)
	var name string
	var n int64
	if err := db.SQL().QueryRow("SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		t.Skipf("%s keeps no per-session statement count (%v)", db.Dialect().Server(), err)
	}
	table := mustRaceTable(t, db, true)
	results := proctest.Run(t, gocProcs, "TestGetOrCreateManyRoundTripsChild", map[string]string{"dsn": dsn, "table": table}, 140*time.Second)
	sum := func(key string) (total, most int64) {
		vals := proctest.Values(results, key)
		if len(vals) != gocProcs {
			t.Fatalf("%d children reported %s, want %d", len(vals), key, gocProcs)
		}
		for _, v := range vals {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: %v", key, v, err)
			}
			total += n
			most = max(most, n)
		}
		return total, most
	}
	created, _ := sum("created")
	batches, _ := sum("batches")
	contended, _ := sum("contended")
	retried, _ := sum("retried")
	_, worst := sum("max")
	checkManyTable(t, db, table, created)
	if worst > rtMaxStatements {
		t.Errorf("a batch sent %d statements, want at most %d", worst, rtMaxStatements)
	}
	// The bound means something only if batches really lost races: each
	// contended batch inserted, lost keys to another, and re-read them.
	if contended == 0 {
		t.Errorf("no batch lost a key to another: the test did not contend")
	}
	if retried > 0 {
		t.Errorf("%d batches had their transaction retried (deadlock): the statements are then not bounded", retried)
	}
	t.Logf("%d processes × %d goroutines: %d batches, %d of them lost keys to another, at most %d statements each, %d rows",
		gocProcs, rtGoroutines, batches, contended, worst, created)
}

// TestGetOrCreateManyRoundTripsChild is one process of
// TestGetOrCreateMany_RoundTripsUnderContention.
func TestGetOrCreateManyRoundTripsChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 130*time.Second)()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(rtGoroutines)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	table := args.Values["table"]
	var created, batches, contended, retried, worst atomic.Int64
	var mu sync.Mutex // guards errs
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// The first call on a DB reads the table's catalog: not the batch's
	// statements.
	warm, err := racefree.GetOrCreateMany[gocmRow](ctx, db, table, []racefree.Item{{Lookup: racefree.Values{"k": "warm"}}}, racefree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if warm[0].Created {
		created.Add(1)
	}
	var wg sync.WaitGroup
	for g := range rtGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			r := rand.New(rand.NewPCG(uint64(args.Index), uint64(g)))
			// Calibrate: what reading the counter adds by itself.
			q0, err := questions(ctx, conn)
			if err == nil {
				var q1 int64
				q1, err = questions(ctx, conn)
				q0 = q1 - q0
			}
			if err != nil {
				fail(err)
				return
			}
			var retries atomic.Int64
			opts := racefree.Options{Retry: onRetry(racefree.Backoff{}, func(int, error, time.Duration) { retries.Add(1) })}
			for round := range rtRounds {
				items := make([]racefree.Item, rtBatch)
				for i := range items {
					k := fmt.Sprintf("r%d-k%d", round, r.IntN(rtKeys))
					items[i] = racefree.Item{Lookup: racefree.Values{"k": k}, Defaults: racefree.Values{"v": "x"}}
				}
				before, err := questions(ctx, conn)
				if err != nil {
					fail(err)
					return
				}
				retries.Store(0)
				res, err := racefree.GetOrCreateMany[gocmRow](ctx, conn, table, items, opts)
				if err != nil {
					fail(err)
					continue
				}
				after, err := questions(ctx, conn)
				if err != nil {
					fail(err)
					return
				}
				sent := after - before - q0
				batches.Add(1)
				// SELECT + transaction + INSERT + warnings + COMMIT is 6;
				// a seventh is the re-read of keys another batch created
				// between our SELECT and our INSERT.
				if sent == rtMaxStatements {
					contended.Add(1)
				}
				if retries.Load() > 0 {
					retried.Add(1)
				}
				for prev := worst.Load(); sent > prev && !worst.CompareAndSwap(prev, sent); prev = worst.Load() {
				}
				for i, x := range res {
					if x.Row.K != items[i].Lookup["k"] || x.Row.ID == 0 {
						fail(fmt.Errorf("item %d: row %+v for %v", i, x.Row, items[i].Lookup))
						break
					}
					if x.Created {
						created.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	errorsSurfaced(t, "", errs)
	proctest.Report("created", created.Load())
	proctest.Report("batches", batches.Load())
	proctest.Report("contended", contended.Load())
	proctest.Report("retried", retried.Load())
	proctest.Report("max", worst.Load())
}

// questions reads the server's count of statements this session sent.
func questions(ctx context.Context, conn *racefree.Conn) (int64, error) {
	var name string
	var n int64
	err := conn.SQL().QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n)
	return n, err
}
