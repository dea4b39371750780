package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// The shape of the Galera batch race: each node's goroutines take batches
// 0, 1, 2, … in turn, so the nodes go through the same batches at about
// the same time; batch b covers galeraBatchKeys consecutive keys from key
// b*galeraBatchKeys/2, so it shares half its keys with each neighbour.
// Creations race across nodes and within each node throughout the run.
const (
	galeraBatchKeys  = 16
	galeraBatchCalls = 2 // batches per goroutine
	galeraManyKeys   = galeraGoroutines * galeraBatchCalls * galeraBatchKeys / 2
)

// manyRow is what the batch race reads back: v tells whose defaults made
// the row.
type manyRow struct {
	ID int64  `db:"id"`
	K  string `db:"k"`
	V  string `db:"v"`
}

// TestGalera_GetOrCreateManyAcrossNodes: goroutines on every node of a
// Galera cluster create overlapping batches, each holding two lookups
// twice. Inserts of the same key on two nodes collide at certification
// (a deadlock error, retried); the lock strategy's named locks are
// certified row writes. Afterwards every node holds one row per key, made
// by the one item told Created, whose defaults it carries, and every
// Result, repeats included, names that row.
func TestGalera_GetOrCreateManyAcrossNodes(t *testing.T) {
	dsns := testdb.GaleraDSNs(t)
	defer testdb.Watchdog(t, 90*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	dbs := openGaleraNodes(t, dsns)
	for _, tc := range gocRaceCases[:2] { // constraint, lock
		t.Run(tc.name, func(t *testing.T) {
			table := mustRaceTable(t, dbs[0], tc.unique)
			galeraCaughtUp(t, dbs, table)
			var ledger galeraLedger
			conflicts := galeraConflicts(t, dbs)
			var created, retried atomic.Int64
			opts := racefree.Options{Strategy: tc.strategy, Retry: countCertFailures(dbs[0], &retried)}
			next := make([]atomic.Int64, len(dbs)) // per node: the next batch to take
			errs := onEveryNode(dbs, func(db *racefree.DB, g int) error {
				n := g / galeraGoroutines
				for range galeraBatchCalls {
					items := galeraManyItems(n, int(next[n].Add(1)-1))
					res, err := racefree.GetOrCreateMany[manyRow](ctx, db, table, items, opts)
					if err != nil {
						return err
					}
					if len(res) != len(items) {
						return fmt.Errorf("%d results for %d items", len(res), len(items))
					}
					for j, r := range res {
						k, tag := items[j].Lookup["k"].(string), items[j].Defaults["v"].(string)
						if r.Row.K != k || r.Row.ID == 0 || r.Created && r.Row.V != tag {
							return fmt.Errorf("item %d (%s, %s): result %+v", j, k, tag, r)
						}
						ledger.record(k, r.Row.ID, r.Created, tag)
						if r.Created {
							created.Add(1)
						}
					}
				}
				return nil
			})
			errorsSurfaced(t, "", errs)
			conflicts = galeraConflicts(t, dbs) - conflicts
			galeraCaughtUp(t, dbs, table)
			for n, db := range dbs {
				checkManyTable(t, db, table, created.Load())
				ledger.check(t, db, table, galeraManyKeys, true)
				if t.Failed() {
					t.Fatalf("node %d disagrees (see above)", n)
				}
			}
			// Two nodes' batch INSERTs collide at certification only when
			// they insert a key within one replication delay: a few times
			// a run here, sometimes never. The lock strategy's lock rows
			// are held for a whole transaction, so its collisions are
			// sure to happen.
			if tc.strategy == racefree.StrategyLock && retried.Load() == 0 {
				t.Errorf("no certification failure was retried: the nodes never competed for a lock")
			}
			t.Logf("%s: %d goroutines × %d batches of %d items over %d keys: %d rows created; %d certification failures retried here, %d conflicts counted by the nodes",
				tc.name, len(dbs)*galeraGoroutines, galeraBatchCalls, galeraBatchKeys+2, galeraManyKeys, created.Load(), retried.Load(), conflicts)
		})
	}
	t.Run("SerializableRefused", func(t *testing.T) {
		table := mustRaceTable(t, dbs[0], false)
		_, err := racefree.GetOrCreateMany[manyRow](ctx, dbs[0], table, galeraManyItems(0, 0),
			racefree.Options{Strategy: racefree.StrategySerializable})
		if !errors.Is(err, racefree.ErrStrategyUnavailable) {
			t.Fatalf("err = %v, want ErrStrategyUnavailable", err)
		}
		if n := testdb.QueryInt(t, dbs[0], "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Fatalf("refused call wrote %d rows", n)
		}
	})
}

// galeraManyItems is batch b of node n: galeraBatchKeys consecutive keys,
// in descending order for odd batches (so that input order is not the
// canonical one), then the first and the third key again. Every item's
// defaults name it.
func galeraManyItems(n, b int) []racefree.Item {
	start := b * galeraBatchKeys / 2
	keys := make([]string, 0, galeraBatchKeys+2)
	for j := range galeraBatchKeys {
		keys = append(keys, "k"+strconv.Itoa((start+j)%galeraManyKeys))
	}
	if b%2 == 1 {
		slices.Reverse(keys)
	}
	keys = append(keys, keys[0], keys[2])
	items := make([]racefree.Item, len(keys))
	for j, k := range keys {
		items[j] = racefree.Item{
			Lookup:   racefree.Values{"k": k},
			Defaults: racefree.Values{"v": fmt.Sprintf("n%d-b%d-j%d", n, b, j)},
		}
	}
	return items
}

// galeraGoroutines run on each node: 3 nodes make 96, over pools of
// gocPool*2 connections per node.
const galeraGoroutines = 32

// openGaleraNodes opens every node, each with a capped pool. Its sessions
// set wsrep_retry_autocommit to 0: a node then hands an autocommit
// statement that failed certification back to the client instead of
// running it again itself, so racefree's own retry of the constraint
// strategy's statements is what the race tests exercise.
func openGaleraNodes(tb testing.TB, dsns []string) []*racefree.DB {
	tb.Helper()
	dbs := make([]*racefree.DB, len(dsns))
	for i, dsn := range dsns {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dbs[i] = testdb.Open(tb, dsn+sep+"wsrep_retry_autocommit=0")
		dbs[i].SQL().SetMaxOpenConns(gocPool * 2)
	}
	return dbs
}

// onEveryNode runs galeraGoroutines goroutines per node, released at once,
// each calling work with its node and a number unique across nodes, and
// returns the errors they returned.
func onEveryNode(dbs []*racefree.DB, work func(db *racefree.DB, g int) error) []error {
	var mu sync.Mutex // guards errs
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for n, db := range dbs {
		for g := range galeraGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := work(db, n*galeraGoroutines+g); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("node %d: %w", n, err))
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	return errs
}

// countCertFailures returns the default retry policy, counting the
// retried deadlock errors, which is how a Galera certification failure
// arrives.
func countCertFailures(db *racefree.DB, n *atomic.Int64) racefree.RetryPolicy {
	return onRetry(racefree.Backoff{}, func(_ int, err error, _ time.Duration) {
		if db.Classify(err).Class == dialect.ClassDeadlock {
			n.Add(1)
		}
	})
}

// galeraCaughtUp waits until every node has applied every write set
// committed anywhere so far (a read with wsrep_sync_wait), and checks that
// table is there: a node applies other nodes' commits, DDL included, after
// they return, so without this a node could miss a table just created or
// rows just committed elsewhere.
func galeraCaughtUp(tb testing.TB, dbs []*racefree.DB, table string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n, db := range dbs {
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			tb.Fatalf("node %d: %v", n, err)
		}
		var rows int64
		_, err = conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
		if err == nil {
			err = conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&rows)
		}
		if err == nil {
			_, err = conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 0")
		}
		conn.Close()
		if err != nil {
			tb.Fatalf("node %d: wait for the cluster: %v", n, err)
		}
	}
}

// galeraConflicts sums over the nodes the server's counts of transactions
// that failed certification or were aborted by another node's write set.
// They are global: for the log only, as other tests may share the cluster.
func galeraConflicts(tb testing.TB, dbs []*racefree.DB) int64 {
	tb.Helper()
	var sum int64
	for _, db := range dbs {
		rs, err := db.SQL().QueryContext(context.Background(),
			"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')")
		if err != nil {
			tb.Fatalf("read wsrep status: %v", err)
		}
		for rs.Next() {
			var name string
			var n int64
			if err := rs.Scan(&name, &n); err != nil {
				tb.Fatalf("read wsrep status: %v", err)
			}
			sum += n
		}
		if err := rs.Err(); err != nil {
			tb.Fatalf("read wsrep status: %v", err)
		}
		rs.Close()
	}
	return sum
}

// galeraLedger is what callers were told, per key: the row ids returned
// and the tags of the callers told Created.
type galeraLedger struct {
	mu       sync.Mutex                // guards the maps
	ids      map[string]map[int64]bool // key → ids returned for it
	creators map[string][]string       // key → tags of the calls told Created
}

func (l *galeraLedger) record(key string, id int64, created bool, tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = make(map[string]map[int64]bool)
		l.creators = make(map[string][]string)
	}
	if l.ids[key] == nil {
		l.ids[key] = make(map[int64]bool)
	}
	l.ids[key][id] = true
	if created {
		l.creators[key] = append(l.creators[key], tag)
	}
}

// check fails tb unless table, read on db, holds exactly the wantKeys keys
// callers asked for, each row with the one id every caller was given and
// made by exactly one caller told Created; with tagIsV, that creator's
// tag is the row's v.
func (l *galeraLedger) check(tb testing.TB, db *racefree.DB, table string, wantKeys int, tagIsV bool) {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) != wantKeys {
		tb.Errorf("callers were given rows for %d keys, want %d", len(l.ids), wantKeys)
	}
	rs, err := db.SQL().QueryContext(context.Background(), "SELECT k, id, COALESCE(v, '') FROM "+table)
	if err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
	defer rs.Close()
	seen := 0
	var bad []string
	for rs.Next() {
		var k, v string
		var id int64
		if err := rs.Scan(&k, &id, &v); err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		seen++
		ids, creators := l.ids[k], l.creators[k]
		if len(ids) != 1 || !ids[id] {
			bad = append(bad, fmt.Sprintf("key %s: row %d, callers were given ids %v", k, id, ids))
		}
		if len(creators) != 1 {
			bad = append(bad, fmt.Sprintf("key %s: %d callers told Created (%v), want 1", k, len(creators), creators))
		} else if tagIsV && creators[0] != v {
			bad = append(bad, fmt.Sprintf("key %s: row made with defaults %q, the call told Created had %q", k, v, creators[0]))
		}
	}
	if err := rs.Err(); err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
	if seen != len(l.ids) {
		tb.Errorf("%d rows, callers were given rows for %d keys", seen, len(l.ids))
	}
	for i, b := range bad {
		if i == 5 {
			tb.Errorf("… and %d more keys wrong", len(bad)-5)
			break
		}
		tb.Error(b)
	}
}
