package racefree_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// The race tests: gocGoroutines goroutines in each of gocProcs processes
// call the get-or-create family at once on one hot key and on gocKeys
// other keys, then the table is checked: one row per key, the sum of
// created flags equal to the rows, no error surfaced.
const (
	gocGoroutines = 64
	gocProcs      = 4
	gocKeys       = 16
	gocCalls      = 4 // per goroutine
	gocPool       = 2 // connections per process and strategy: 4 processes × 3 strategies × 2 = 24 sessions, well under PostgreSQL's 100 shared with other suites
)

// gocRaceCase is one strategy under test, with the table shape it needs.
type gocRaceCase struct {
	name     string
	strategy racefree.Strategy
	unique   bool // the table has UNIQUE (k)
}

var gocRaceCases = []gocRaceCase{
	{"Constraint", racefree.StrategyConstraint, true},
	{"Lock", racefree.StrategyLock, false},
	{"Serializable", racefree.StrategySerializable, false},
}

func mustRaceTable(tb testing.TB, db *racefree.DB, unique bool) string {
	tb.Helper()
	ddl := `id {{id}}, k {{text}} NOT NULL, v {{text}}`
	if unique {
		ddl += `, CONSTRAINT {{table}}_k UNIQUE (k)`
	}
	return testdb.CreateTable(tb, db, "goc_race", ddl)
}

// gocKey is the key call i of goroutine g uses: even goroutines hammer
// one hot key, odd ones spread over gocKeys keys.
func gocKey(g, i int) string {
	if g%2 == 0 {
		return "hot"
	}
	return "k" + strconv.Itoa((g/2+i)%gocKeys)
}

// gocCall runs call i of goroutine g, rotating through GetOrCreate,
// CreateOrGet and adaptive GetOrCreate so that every entry point races.
func gocCall(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, g, i int) (bool, error) {
	lookup := racefree.Values{"k": gocKey(g, i)}
	defaults := racefree.Values{"v": fmt.Sprintf("g%d-i%d", g, i)}
	opts := racefree.Options{Strategy: strategy}
	var row struct {
		ID int64  `db:"id"`
		K  string `db:"k"`
	}
	var created bool
	var err error
	switch (g + i) % 3 {
	case 0:
		row, created, err = racefree.GetOrCreate[struct {
			ID int64  `db:"id"`
			K  string `db:"k"`
		}](ctx, db, table, lookup, defaults, opts)
	case 1:
		row, created, err = racefree.CreateOrGet[struct {
			ID int64  `db:"id"`
			K  string `db:"k"`
		}](ctx, db, table, lookup, defaults, opts)
	default:
		opts.Adaptive = true
		opts.NoCoalesce = g%4 != 1
		row, created, err = racefree.GetOrCreate[struct {
			ID int64  `db:"id"`
			K  string `db:"k"`
		}](ctx, db, table, lookup, defaults, opts)
	}
	if err == nil && (row.ID == 0 || row.K != lookup["k"]) {
		err = fmt.Errorf("wrong row %+v for %v", row, lookup)
	}
	return created, err
}

// runGocWorkers runs n goroutines × gocCalls calls and returns how many
// reported created, and the errors.
func runGocWorkers(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, n, offset int) (int64, []error) {
	var created atomic.Int64
	var mu sync.Mutex // guards errs
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range gocCalls {
				c, err := gocCall(ctx, db, table, strategy, g+offset, i)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				if c {
					created.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return created.Load(), errs
}

// checkGocTable fails tb unless the table holds exactly one row per key
// and created flags add up to the rows.
func checkGocTable(tb testing.TB, db *racefree.DB, table string, created int64) {
	tb.Helper()
	rows := testdb.QueryInt(tb, db, "SELECT COUNT(*) FROM "+table)
	keys := testdb.QueryInt(tb, db, "SELECT COUNT(DISTINCT k) FROM "+table)
	if rows != keys {
		tb.Errorf("%d rows for %d keys: %d duplicates", rows, keys, rows-keys)
	}
	if want := int64(gocKeys + 1); keys != want {
		tb.Errorf("%d keys in the table, want %d", keys, want)
	}
	if created != rows {
		tb.Errorf("sum of created = %d, rows = %d", created, rows)
	}
}

// strategyRuns reports whether the engine can run the strategy: TiDB has
// no SERIALIZABLE isolation, and racefree refuses the serializable
// strategy there.
func strategyRuns(db *racefree.DB, s racefree.Strategy) bool {
	return s != racefree.StrategySerializable || db.Dialect().Features().Has(dialect.SerializableIsolation)
}

// checkLostRaces fails tb when the constraint strategy ran and no call
// lost a race: the test would then prove nothing.
func checkLostRaces(tb testing.TB, s racefree.Strategy, lost int64) {
	tb.Helper()
	if s == racefree.StrategyConstraint && lost == 0 {
		tb.Errorf("no call lost a race to create a row: the test did not race")
	}
}

func TestGetOrCreate_RaceGoroutines(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, tc := range gocRaceCases {
			t.Run(tc.name, func(t *testing.T) {
				defer testdb.Watchdog(t, 90*time.Second)()
				db := e.Open(t)
				if !strategyRuns(db, tc.strategy) {
					t.Skipf("%s has no SERIALIZABLE isolation", db.Dialect().Server())
				}
				db.SQL().SetMaxOpenConns(gocPool * 2)
				table := mustRaceTable(t, db, tc.unique)
				ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
				defer cancel()
				created, errs := runGocWorkers(ctx, db, table, tc.strategy, gocGoroutines, 0)
				errorsSurfaced(t, "", errs)
				checkGocTable(t, db, table, created)
				checkLostRaces(t, tc.strategy, racefree.LostRaces(db))
				t.Logf("%s/%s: %d goroutines × %d calls, %d errors, %d rows created, %d lost races",
					e.Name, tc.name, gocGoroutines, gocCalls, len(errs), created, racefree.LostRaces(db))
			})
		}
	})
}

// TestGetOrCreate_RaceProcesses runs every strategy at once, each on its
// own table, in 4 processes of 64 goroutines per strategy: one re-exec per
// engine keeps the test short.
func TestGetOrCreate_RaceProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 150*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		values := map[string]string{"dsn": dsn}
		tables := make([]string, len(gocRaceCases))
		for i, tc := range gocRaceCases {
			if strategyRuns(db, tc.strategy) { // a child runs the strategies it has a table for
				tables[i] = mustRaceTable(t, db, tc.unique)
				values["table"+strconv.Itoa(i)] = tables[i]
			}
		}
		results := proctest.Run(t, gocProcs, "TestGetOrCreateRaceChild", values, 140*time.Second)
		for i, tc := range gocRaceCases {
			if tables[i] == "" {
				continue
			}
			created := sumReported(t, results, "created"+strconv.Itoa(i))
			lost := sumReported(t, results, "lost"+strconv.Itoa(i))
			t.Run(tc.name, func(t *testing.T) {
				checkGocTable(t, db, tables[i], created)
				checkLostRaces(t, tc.strategy, lost)
			})
			t.Logf("%s/%s: %d processes × %d goroutines × %d calls, %d rows created, %d lost races",
				e.Name, tc.name, gocProcs, gocGoroutines, gocCalls, created, lost)
		}
	})
}

// TestGetOrCreateRaceChild is one process of TestGetOrCreate_RaceProcesses:
// gocGoroutines goroutines per strategy, all strategies at once, each with
// its own pool.
func TestGetOrCreateRaceChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	runStrategiesChild(t, args, func(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, _ *inFlight) (int64, []error) {
		return runGocWorkers(ctx, db, table, strategy, gocGoroutines, args.Index*gocGoroutines)
	})
}

// runStrategiesChild is the body of a child process that runs every
// strategy of gocRaceCases at once, each on its own pool and table
// ("table<i>" in args), and reports "created<i>"; errors surfaced to a
// caller fail the child.
func runStrategiesChild(t *testing.T, args proctest.Args, work func(ctx context.Context, db *racefree.DB, table string, strategy racefree.Strategy, fl *inFlight) (int64, []error)) {
	t.Helper()
	defer testdb.Watchdog(t, 130*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, tc := range gocRaceCases {
		table, ok := args.Values["table"+strconv.Itoa(i)]
		if !ok {
			continue // a strategy the engine cannot run
		}
		db := testdb.Open(t, args.Values["dsn"])
		db.SQL().SetMaxOpenConns(gocPool)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fl inFlight
			created, errs := work(ctx, db, table, tc.strategy, &fl)
			errorsSurfaced(t, tc.name+": ", errs)
			proctest.Report("created"+strconv.Itoa(i), created)
			proctest.Report("lost"+strconv.Itoa(i), racefree.LostRaces(db))
			proctest.Report("most"+strconv.Itoa(i), fl.most.Load())
		}()
	}
	wg.Wait()
}

// TestGetOrCreate_NaiveDuplicates is the control: the same workload done
// the naive way (SELECT, then INSERT if missing) on a table without a
// unique index makes duplicates, so the race tests above can fail.
func TestGetOrCreate_NaiveDuplicates(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		if e.Name == "sqlite" {
			t.Skip("SQLite autocommit statements from one process rarely interleave between SELECT and INSERT")
		}
		defer testdb.Watchdog(t, 60*time.Second)()
		db := e.Open(t)
		db.SQL().SetMaxOpenConns(gocPool * 2)
		table := mustRaceTable(t, db, false)
		ph := db.Dialect().Placeholder
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range gocGoroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range gocCalls {
					k := gocKey(g, i)
					var id int64
					err := db.SQL().QueryRow("SELECT id FROM "+table+" WHERE k = "+ph(1), k).Scan(&id)
					if errors.Is(err, sql.ErrNoRows) {
						_, _ = db.SQL().Exec("INSERT INTO "+table+" (k) VALUES ("+ph(1)+")", k)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		rows := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table)
		if rows <= gocKeys+1 {
			t.Fatalf("naive get-or-create made no duplicate (%d rows): the race tests prove nothing", rows)
		}
		t.Logf("%s: naive get-or-create made %d duplicates", e.Name, rows-gocKeys-1)
	})
}

// errorsSurfaced fails t for errors that reached a caller, showing the
// first five.
func errorsSurfaced(t testing.TB, prefix string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if i == 5 {
			t.Errorf("%s… and %d more", prefix, len(errs)-5)
			return
		}
		t.Errorf("%serror surfaced: %v", prefix, err)
	}
}

// sumReported adds up what every child reported under key, failing tb
// unless each child reported it.
func sumReported(tb testing.TB, results []proctest.Result, key string) int64 {
	tb.Helper()
	vals := proctest.Values(results, key)
	if len(vals) != len(results) {
		tb.Fatalf("%s: %d children reported, want %d", key, len(vals), len(results))
	}
	var total int64
	for _, v := range vals {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			tb.Fatalf("%s=%q: %v", key, v, err)
		}
		total += n
	}
	return total
}

// inFlight counts the calls in flight and remembers the most at once:
// more than one proves that calls overlapped, so that a race could happen.
type inFlight struct{ now, most atomic.Int64 }

func (f *inFlight) enter() {
	n := f.now.Add(1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
}

func (f *inFlight) leave() { f.now.Add(-1) }

// checkOverlapped fails tb unless calls overlapped at some point.
func checkOverlapped(tb testing.TB, most int64) {
	tb.Helper()
	if most < 2 {
		tb.Errorf("at most %d call in flight at once: the test did not race", most)
	}
}

// maxReported is the largest value the children reported under key.
func maxReported(tb testing.TB, results []proctest.Result, key string) int64 {
	tb.Helper()
	var most int64
	for _, v := range proctest.Values(results, key) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			tb.Fatalf("%s=%q: %v", key, v, err)
		}
		most = max(most, n)
	}
	return most
}
