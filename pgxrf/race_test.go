package pgxrf_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/pgxrf"
)

// The race tests of the database/sql path (getorcreate_race_test.go,
// schemashape_race_test.go, updateorcreate_test.go, getorcreatemany tests),
// run through pgx: raceGoroutines goroutines per table, in one process and
// in raceProcs processes at once, call every verb of the get-or-create
// family on fresh keys, round after round — on the pool, on a pooled
// connection, inside pgxrf.RunInTx (READ COMMITTED and REPEATABLE READ or
// SERIALIZABLE) and on a pgx.Tx the caller began at REPEATABLE READ or
// SERIALIZABLE itself. Then the rows are checked: one per key, exactly one
// caller told created, every increment applied, no error surfaced. And the
// race is shown to have happened, from what went over the wire (a pgx
// tracer): GetOrCreate calls whose SELECT missed and whose INSERT then
// inserted nothing (a lost race), serialization failures, restarted
// transactions, and calls on one key from two processes in flight at once.
const (
	raceProcs      = 4
	raceGoroutines = 64
	raceRounds     = 12
	raceKeys       = 4 // per round
	racePool       = 8 // connections per process
	raceVerbs      = 8
)

// raceTable is one table of the race and the strategy its calls demand.
type raceTable struct {
	name     string
	unique   bool
	strategy racefree.Strategy
	// rcIso is the isolation level of verb 4's transaction, the server's
	// default unless the strategy needs SERIALIZABLE; txIso that of verbs
	// 5 and 6: REPEATABLE READ where a unique index decides (a lost race
	// then restarts the transaction), READ COMMITTED for the lock strategy
	// (it refuses a snapshot older than its lock, and at SERIALIZABLE it
	// makes duplicates beside calls at READ COMMITTED: see
	// TestRace_LockStrategySerializableBesidePool), SERIALIZABLE for the
	// serializable strategy, which needs it.
	rcIso, txIso sql.IsolationLevel
	// attempts is the retry budget of the calls' transactions (0: the
	// default). SERIALIZABLE under 4 × 64 callers on 4 keys exhausts the
	// default now and then (shared/ANCHORS.md measured calls failing after
	// 20 attempts); the test is about the rows, not the budget.
	attempts int
}

var raceTables = []raceTable{
	{"Constraint", true, racefree.StrategyAuto, sql.LevelDefault, sql.LevelRepeatableRead, 0},
	{"Lock", false, racefree.StrategyLock, sql.LevelDefault, sql.LevelReadCommitted, 0},
	{"Serializable", false, racefree.StrategySerializable, sql.LevelSerializable, sql.LevelSerializable, 200},
}

func mustRaceTable(tb testing.TB, check *racefree.DB, unique bool) string {
	tb.Helper()
	ddl := "id {{id}}, k TEXT NOT NULL, n BIGINT NOT NULL DEFAULT 0, v TEXT"
	if unique {
		ddl += ", CONSTRAINT {{table}}_k UNIQUE (k)"
	}
	return testdb.CreateTable(tb, check, "pgxrf_race", ddl)
}

// raceRow is what the calls read back.
type raceRow struct {
	ID int64  `db:"id"`
	K  string `db:"k"`
	N  int64  `db:"n"`
}

// raceCall is one finished call on one key.
type raceCall struct {
	Key     string `json:"k"`
	Proc    int    `json:"p"`
	Verb    int    `json:"v"`
	Start   int64  `json:"s"` // UnixNano
	End     int64  `json:"e"`
	Created bool   `json:"c"`
	Inc     bool   `json:"i"` // an increment of n (verb 3) that landed
}

// lostRaces counts the lost races racefree reports to its observer.
type lostRaces struct{ n atomic.Int64 }

func (l *lostRaces) Observe(_ context.Context, e racefree.Event) {
	if e.Kind == racefree.EventLostRace {
		l.n.Add(1)
	}
}

// raceTrace counts, from what went over the wire, the evidence that calls
// raced: it sees every statement of the pool it is installed on.
type raceTrace struct {
	lostInserts   atomic.Int64 // INSERTs of a select-first GetOrCreate that inserted nothing
	serialization atomic.Int64 // statements that failed with 40001 or 40P01
}

// selectFirst marks the context of a select-first GetOrCreate call: its
// INSERT runs only after its SELECT missed, so an INSERT that inserts
// nothing is a race lost to another caller.
type selectFirst struct{}

type traceSQL struct{}

func (r *raceTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceSQL{}, data.SQL)
}

func (r *raceTrace) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err != nil {
		if s := sqlState(data.Err); s == "40001" || s == "40P01" {
			r.serialization.Add(1)
		}
		return
	}
	query, _ := ctx.Value(traceSQL{}).(string)
	if ctx.Value(selectFirst{}) != nil && data.CommandTag.Insert() && data.CommandTag.RowsAffected() == 0 &&
		strings.HasPrefix(query, "INSERT") {
		r.lostInserts.Add(1)
	}
}

func sqlState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// raceWork is one process's (or the goroutine test's) share of the race on
// one table.
type raceWork struct {
	db    *racefree.DB
	pool  *pgxpool.Pool
	table string
	tc    raceTable
	proc  int
	// barrier is the table the processes meet in before each round, and
	// procs how many meet; "" for one process.
	barrier string
	procs   int

	mu       sync.Mutex // guards calls and errs
	calls    []raceCall
	errs     []error
	restarts atomic.Int64 // transactions of verbs 5 and 6 run again
}

func (w *raceWork) record(c raceCall, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("verb %d, key %s: %w", c.Verb, c.Key, err))
		return
	}
	w.calls = append(w.calls, c)
}

// run runs raceRounds rounds of raceKeys fresh keys, raceGoroutines
// goroutines each, goroutine g calling verb g%raceVerbs on two of them
// (verb 7 on all of them at once where it is GetOrCreateMany). Before each
// round the processes meet at a barrier, so that they race on its keys.
func (w *raceWork) run(ctx context.Context) {
	for r := range raceRounds {
		if err := w.meet(ctx, r); err != nil {
			w.record(raceCall{Key: "barrier"}, err)
			return
		}
		var wg sync.WaitGroup
		for g := range raceGoroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w.proc), uint64(g*raceRounds+r)))
				verb := g % raceVerbs
				keys := make([]string, raceKeys)
				for k := range keys {
					keys[k] = fmt.Sprintf("r%d-k%d", r, k)
				}
				rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
				if verb == 7 && w.tc.unique {
					w.many(ctx, keys)
					return
				}
				for _, k := range keys[:2] {
					start := time.Now().UnixNano()
					c, err := w.call(ctx, verb, k)
					c.Key, c.Proc, c.Verb, c.Start, c.End = k, w.proc, verb, start, time.Now().UnixNano()
					w.record(c, err)
				}
			})
		}
		wg.Wait()
	}
}

// meet waits until every process has reached round r: each writes its
// row in the barrier table, then waits for the others'. Without a barrier
// table (one process) it returns at once.
func (w *raceWork) meet(ctx context.Context, r int) error {
	if w.barrier == "" {
		return nil
	}
	if _, err := w.pool.Exec(ctx, "INSERT INTO "+w.barrier+" (round, proc) VALUES ($1, $2)", r, w.proc); err != nil {
		return err
	}
	for {
		var n int
		if err := w.pool.QueryRow(ctx, "SELECT COUNT(*) FROM "+w.barrier+" WHERE round = $1", r).Scan(&n); err != nil {
			return err
		}
		if n >= w.procs {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// call runs verb on key k.
func (w *raceWork) call(ctx context.Context, verb int, k string) (raceCall, error) {
	lookup := racefree.Values{"k": k}
	txOpts := racefree.TxOptions{Retry: racefree.Backoff{MaxAttempts: w.tc.attempts, MaxElapsed: time.Minute}}
	opts := racefree.Options{Strategy: w.tc.strategy, Retry: txOpts.Retry}
	var c raceCall
	var row raceRow
	var err error
	switch verb {
	case 0: // on the pool
		row, c.Created, err = racefree.GetOrCreate[raceRow](context.WithValue(ctx, selectFirst{}, true), w.db, w.table, lookup, racefree.Values{"v": "get"}, opts)
	case 1:
		row, c.Created, err = racefree.CreateOrGet[raceRow](ctx, w.db, w.table, lookup, racefree.Values{"v": "create"}, opts)
	case 2:
		row, c.Created, err = racefree.UpdateOrCreate[raceRow](ctx, w.db, w.table, lookup, racefree.Values{"v": "update"}, opts)
	case 3: // increments: none may be lost
		row, c.Created, err = racefree.UpdateOrCreateFunc(ctx, w.db, w.table, lookup, func(cur *raceRow) (racefree.Values, error) {
			if cur == nil {
				return racefree.Values{"n": 1}, nil
			}
			return racefree.Values{"n": cur.N + 1}, nil
		}, opts)
		c.Inc = err == nil
	case 4: // inside pgxrf.RunInTx at rcIso
		err = pgxrf.RunInTx(ctx, w.db, racefree.TxOptions{Isolation: w.tc.rcIso, Retry: racefree.Backoff{MaxAttempts: w.tc.attempts, MaxElapsed: time.Minute}}, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			row, c.Created, err = racefree.GetOrCreate[raceRow](context.WithValue(ctx, selectFirst{}, true), pgxrf.WrapTx(w.db, tx, nil), w.table, lookup, racefree.Values{"v": "rc"}, opts)
			return err
		})
	case 5: // inside pgxrf.RunInTx at txIso: a lost race restarts the transaction
		attempts := 0
		err = pgxrf.RunInTx(ctx, w.db, racefree.TxOptions{Isolation: w.tc.txIso, Retry: racefree.Backoff{MaxAttempts: w.tc.attempts, MaxElapsed: time.Minute}}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			var err error
			row, c.Created, err = racefree.GetOrCreate[raceRow](context.WithValue(ctx, selectFirst{}, true), pgxrf.WrapTx(w.db, tx, nil), w.table, lookup, racefree.Values{"v": "runintx"}, opts)
			return err
		})
		w.restarts.Add(int64(attempts - 1))
	case 6: // on the caller's own pgx.Tx at txIso, retried by the caller
		row, c.Created, err = w.ownTx(ctx, lookup, opts)
	default: // on a pooled connection
		var conn *racefree.Conn
		if conn, err = w.db.Conn(ctx); err == nil {
			row, c.Created, err = racefree.GetOrCreate[raceRow](context.WithValue(ctx, selectFirst{}, true), conn, w.table, lookup, racefree.Values{"v": "conn"}, opts)
			conn.Close()
		}
	}
	if err == nil && (row.ID == 0 || row.K != k) {
		err = fmt.Errorf("wrong row %+v", row)
	}
	return c, err
}

// ownTx is GetOrCreate in a transaction the caller began with pgx and
// commits itself; racefree's retryable errors make the caller run it again.
func (w *raceWork) ownTx(ctx context.Context, lookup racefree.Values, opts racefree.Options) (raceRow, bool, error) {
	txOpts := pgx.TxOptions{IsoLevel: map[sql.IsolationLevel]pgx.TxIsoLevel{
		sql.LevelReadCommitted: pgx.ReadCommitted, sql.LevelRepeatableRead: pgx.RepeatableRead, sql.LevelSerializable: pgx.Serializable,
	}[w.tc.txIso]}
	for attempt := 1; ; attempt++ {
		row, created, err := func() (raceRow, bool, error) {
			ptx, err := w.pool.BeginTx(ctx, txOpts)
			if err != nil {
				return raceRow{}, false, err
			}
			defer ptx.Rollback(context.WithoutCancel(ctx))
			row, created, err := racefree.GetOrCreate[raceRow](context.WithValue(ctx, selectFirst{}, true), pgxrf.WrapTx(w.db, ptx, &txOpts), w.table, lookup, racefree.Values{"v": "own"}, opts)
			if err != nil {
				return row, created, err
			}
			if err := ptx.Commit(ctx); err != nil {
				return row, created, w.db.Classify(err)
			}
			return row, created, nil
		}()
		if err == nil || !racefree.IsRetryable(err) || attempt == max(50, w.tc.attempts) {
			if err != nil {
				err = fmt.Errorf("own transaction, attempt %d: %w", attempt, err)
			}
			return row, created, err
		}
		w.restarts.Add(1)
		time.Sleep(time.Duration(rand.IntN(attempt*2000)) * time.Microsecond)
	}
}

// many is GetOrCreateMany of every key of the round.
func (w *raceWork) many(ctx context.Context, keys []string) {
	items := make([]racefree.Item, len(keys))
	for i, k := range keys {
		items[i] = racefree.Item{Lookup: racefree.Values{"k": k}, Defaults: racefree.Values{"v": "many"}}
	}
	start := time.Now().UnixNano()
	res, err := racefree.GetOrCreateMany[raceRow](ctx, w.db, w.table, items, racefree.Options{Strategy: w.tc.strategy, Retry: racefree.Backoff{MaxAttempts: w.tc.attempts}})
	end := time.Now().UnixNano()
	for i, k := range keys {
		c := raceCall{Key: k, Proc: w.proc, Verb: 7, Start: start, End: end}
		if err == nil {
			c.Created = res[i].Created
			if res[i].Row.K != k || res[i].Row.ID == 0 {
				err = fmt.Errorf("GetOrCreateMany: row %+v for item %d", res[i].Row, i)
			}
		}
		w.record(c, err)
	}
}

// raceOutcome is what the calls on one table add up to, across processes.
type raceOutcome struct {
	calls                                []raceCall
	lostInserts, serialization, restarts int64
	observed                             int64 // lost races racefree's observer saw
}

// checkRace fails t unless the table holds one row per key, with one
// creator each and every increment applied, and the race really happened.
func checkRace(t *testing.T, check *racefree.DB, table string, tc raceTable, out raceOutcome, procs int) {
	t.Helper()
	wantKeys := raceRounds * raceKeys
	created, incs := map[string]int{}, map[string]int64{}
	for _, c := range out.calls {
		if c.Created {
			created[c.Key]++
		}
		if c.Inc {
			incs[c.Key]++
		}
	}
	if len(out.calls) == 0 {
		t.Fatal("no call finished")
	}
	rows, err := check.SQL().Query("SELECT k, COUNT(*), SUM(n) FROM " + table + " GROUP BY k")
	must(t, err)
	defer rows.Close()
	keys := 0
	for rows.Next() {
		var k string
		var n, sum int64
		must(t, rows.Scan(&k, &n, &sum))
		keys++
		if n != 1 {
			t.Errorf("key %s: %d rows", k, n)
		}
		if created[k] != 1 {
			var verbs []int
			for _, c := range out.calls {
				if c.Key == k && c.Created {
					verbs = append(verbs, c.Verb)
				}
			}
			t.Errorf("key %s: %d callers told created (verbs %v), want 1", k, created[k], verbs)
		}
		if sum != incs[k] {
			t.Errorf("key %s: n = %d after %d increments: %d lost", k, sum, incs[k], incs[k]-sum)
		}
	}
	must(t, rows.Err())
	if keys != wantKeys {
		t.Errorf("%d keys in the table, want %d", keys, wantKeys)
	}
	byKey := map[string][]raceCall{}
	for _, c := range out.calls {
		byKey[c.Key] = append(byKey[c.Key], c)
	}
	raced := 0
	for _, cs := range byKey {
		if overlapping(cs, procs > 1) {
			raced++
		}
	}
	if raced < wantKeys/2 {
		t.Errorf("only %d of %d keys had two calls in flight at once (from two processes: %v): the test did not race", raced, wantKeys, procs > 1)
	}
	switch tc.strategy {
	case racefree.StrategyAuto:
		// A lost race shows as an INSERT that inserted nothing outside a
		// snapshot, and as a restarted transaction at REPEATABLE READ.
		if out.lostInserts == 0 && out.restarts == 0 {
			t.Error("no select-first GetOrCreate lost the race to create a row: the test did not race")
		}
		if out.observed == 0 {
			t.Error("racefree's observer saw no lost race")
		}
	case racefree.StrategySerializable:
		if out.serialization == 0 {
			t.Error("no serialization failure went over the wire: the test did not race")
		}
	}
	t.Logf("%s: %d calls; %d of %d keys raced; on the wire %d select-first GetOrCreate calls lost the race and got the winner's row, %d serialization failures or deadlocks; %d transactions restarted; %d lost races reported to racefree's observer",
		tc.name, len(out.calls), raced, wantKeys, out.lostInserts, out.serialization, out.restarts, out.observed)
}

// overlapping reports whether two of cs (from different processes, if
// acrossProcs) were in flight at the same time.
func overlapping(cs []raceCall, acrossProcs bool) bool {
	slices.SortFunc(cs, func(a, b raceCall) int { return cmp.Compare(a.Start, b.Start) })
	for i, a := range cs {
		for _, b := range cs[i+1:] {
			if b.Start >= a.End {
				break
			}
			if !acrossProcs || b.Proc != a.Proc {
				return true
			}
		}
	}
	return false
}

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

func TestRace_Goroutines(t *testing.T) {
	defer testdb.Watchdog(t, 3*time.Minute)()
	e := pg(t)
	check := e.Open(t)
	for _, tc := range raceTables {
		t.Run(tc.name, func(t *testing.T) {
			trace, lost := &raceTrace{}, &lostRaces{}
			pool := mustPool(t, e.DSN(t), racePool, trace)
			db := mustDB(t, pool, racefree.WithObserver(lost))
			table := mustRaceTable(t, check, tc.unique)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			w := &raceWork{db: db, pool: pool, table: table, tc: tc}
			w.run(ctx)
			errorsSurfaced(t, "", w.errs)
			checkRace(t, check, table, tc, raceOutcome{w.calls, trace.lostInserts.Load(), trace.serialization.Load(), w.restarts.Load(), lost.n.Load()}, 1)
		})
	}
}

// TestRace_Processes runs the race in raceProcs OS processes at once, every
// table at the same time.
func TestRace_Processes(t *testing.T) {
	defer testdb.Watchdog(t, 5*time.Minute)()
	e := pg(t)
	check := e.Open(t)
	values := map[string]string{"dsn": e.DSN(t)}
	tables := make([]string, len(raceTables))
	for i, tc := range raceTables {
		tables[i] = mustRaceTable(t, check, tc.unique)
		values["table"+strconv.Itoa(i)] = tables[i]
		values["barrier"+strconv.Itoa(i)] = testdb.CreateTable(t, check, "pgxrf_barrier", "round INTEGER NOT NULL, proc INTEGER NOT NULL")
	}
	results := proctest.Run(t, raceProcs, "TestRaceChild", values, 270*time.Second)
	for i, tc := range raceTables {
		t.Run(tc.name, func(t *testing.T) {
			var out raceOutcome
			for _, v := range proctest.Values(results, "calls"+strconv.Itoa(i)) {
				var part []raceCall
				must(t, json.Unmarshal([]byte(v), &part))
				out.calls = append(out.calls, part...)
			}
			out.lostInserts = sumReported(results, "lost"+strconv.Itoa(i))
			out.serialization = sumReported(results, "serialization"+strconv.Itoa(i))
			out.restarts = sumReported(results, "restarts"+strconv.Itoa(i))
			out.observed = sumReported(results, "observed"+strconv.Itoa(i))
			checkRace(t, check, tables[i], tc, out, raceProcs)
		})
	}
}

// TestRaceChild is one process of TestRace_Processes.
func TestRaceChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 260*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, tc := range raceTables {
		trace, lost := &raceTrace{}, &lostRaces{}
		pool := mustPool(t, args.Values["dsn"], racePool/2, trace)
		w := &raceWork{db: mustDB(t, pool, racefree.WithObserver(lost)), pool: pool, table: args.Values["table"+strconv.Itoa(i)], tc: tc, proc: args.Index,
			barrier: args.Values["barrier"+strconv.Itoa(i)], procs: raceProcs}
		wg.Go(func() {
			w.run(ctx)
			errorsSurfaced(t, tc.name+": ", w.errs)
			enc, _ := json.Marshal(w.calls)
			proctest.Report("calls"+strconv.Itoa(i), string(enc))
			proctest.Report("lost"+strconv.Itoa(i), trace.lostInserts.Load())
			proctest.Report("serialization"+strconv.Itoa(i), trace.serialization.Load())
			proctest.Report("restarts"+strconv.Itoa(i), w.restarts.Load())
			proctest.Report("observed"+strconv.Itoa(i), lost.n.Load())
		})
	}
	wg.Wait()
}

func sumReported(results []proctest.Result, key string) int64 {
	var sum int64
	for _, v := range proctest.Values(results, key) {
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return sum
}

// TestRace_LockStrategySerializableRefused: the lock strategy inside a
// SERIALIZABLE transaction is refused. The lock is the transaction's first
// statement, so its snapshot is taken before the lock is granted and cannot
// see the row the previous holder committed; PostgreSQL's serializable
// conflict detection only compares SERIALIZABLE transactions, so beside the
// same calls on the pool (READ COMMITTED) nothing would stop a duplicate
// (measured before the core refused it: duplicates).
func TestRace_LockStrategySerializableRefused(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	_, check, db, _ := open(t, 8)
	table := mustRaceTable(t, check, false)
	ctx := context.Background()
	err := pgxrf.RunInTx(ctx, db, racefree.TxOptions{Isolation: sql.LevelSerializable}, func(ctx context.Context, tx pgx.Tx) error {
		_, _, err := racefree.GetOrCreate[raceRow](ctx, pgxrf.WrapTx(db, tx, nil), table, racefree.Values{"k": "a"}, nil, racefree.Options{Strategy: racefree.StrategyLock})
		return err
	})
	if !errors.Is(err, racefree.ErrStrategyUnavailable) {
		t.Fatalf("err = %v, want ErrStrategyUnavailable", err)
	}
}
