package gormrf_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/gormrf"
	"github.com/racefree/racefree/gormrf/internal/gormtest"
)

// raceUser is the model of the classic reproduction: users looked up by
// e-mail, created on first sight.
type raceUser struct {
	ID        int64
	Email     string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// raceDDL is raceUser's table, with or without the unique index that GORM
// users put on the lookup column (gorm:"uniqueIndex").
func raceDDL(unique bool) string {
	ddl := "id {{id}}, email {{text}} NOT NULL, name {{text}}, created_at {{time}}, updated_at {{time}}"
	if unique {
		ddl += ", CONSTRAINT {{table}}_email UNIQUE (email)"
	}
	return ddl
}

// Ways to run the reproduction: whose FirstOrCreate, and where.
const (
	gormPool      = "gorm/pool"        // GORM's FirstOrCreate on the pool
	gormTx        = "gorm/transaction" // GORM's, inside db.Transaction
	gormrfPool    = "gormrf/pool"
	gormrfTx      = "gormrf/transaction" // gormrf's, inside GORM's db.Transaction
	gormrfRunInTx = "gormrf/runintx"     // gormrf's, inside gormrf.RunInTx at SERIALIZABLE
)

// stormResult counts what a storm's callers saw.
type stormResult struct {
	created    []string // one entry per created == true, the key
	uniqueErrs int      // unique-violation errors returned to callers
	otherErrs  int
	firstErr   error
	retries    int64 // RunInTx retries (gormrf/runintx)
}

// storm runs goroutines workers that call one FirstOrCreate on every key,
// all on the same key at once (a barrier before each key).
func storm(ctx context.Context, gdb *gorm.DB, how, table string, keys []string, goroutines int) stormResult {
	var (
		mu      sync.Mutex // guards res
		res     stormResult
		retries atomic.Int64
	)
	rdb, _ := gormrf.DB(gdb)
	bar := newBarrier(goroutines)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for _, key := range keys {
				bar.wait()
				created, err := firstOrCreate(ctx, gdb, how, table, key, &retries)
				mu.Lock()
				switch {
				case err == nil && created:
					res.created = append(res.created, key)
				case err == nil:
				case errors.Is(rdb.Classify(err), racefree.ErrUniqueViolation):
					res.uniqueErrs++
				default:
					res.otherErrs++
				}
				if err != nil && res.firstErr == nil {
					res.firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.retries = retries.Load()
	return res
}

// firstOrCreate is one caller of the reproduction. GORM's own reports
// created == false: only its errors and the rows count.
func firstOrCreate(ctx context.Context, gdb *gorm.DB, how, table, key string, retries *atomic.Int64) (created bool, err error) {
	var u raceUser
	lookup, attrs := raceUser{Email: key}, raceUser{Name: "user " + key}
	switch how {
	case gormPool:
		return false, gdb.WithContext(ctx).Table(table).Where(lookup).Attrs(attrs).FirstOrCreate(&u).Error
	case gormTx:
		return false, gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return tx.Table(table).Where(lookup).Attrs(attrs).FirstOrCreate(&u).Error
		})
	case gormrfPool:
		created, err = gormrf.FirstOrCreate(ctx, gdb.Table(table), &u, lookup, attrs)
	case gormrfTx:
		err = gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			created, err = gormrf.FirstOrCreate(ctx, tx.Table(table), &u, lookup, attrs)
			return err
		})
	case gormrfRunInTx:
		opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(int, error, time.Duration) { retries.Add(1) })}
		if gdb.Dialector.Name() != "sqlite" {
			opts.Isolation = sql.LevelSerializable
		}
		err = gormrf.RunInTx(ctx, gdb, opts, func(tx *gorm.DB) error {
			var err error
			created, err = gormrf.FirstOrCreate(ctx, tx.Table(table), &u, lookup, attrs)
			return err
		})
	default:
		panic("unknown way " + how)
	}
	if err == nil && (u.Email != key || u.ID == 0 || u.Name != "user "+key || u.CreatedAt.IsZero()) {
		err = fmt.Errorf("row read back wrong: %+v", u)
	}
	return created, err
}

// barrier releases its n goroutines together, again and again.
type barrier struct {
	n     int
	mu    sync.Mutex    // guards count and gen
	count int           // goroutines waiting in this generation
	gen   chan struct{} // closed when the generation is complete
}

func newBarrier(n int) *barrier { return &barrier{n: n, gen: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	gen := b.gen
	b.count++
	if b.count == b.n {
		b.count, b.gen = 0, make(chan struct{})
		close(gen)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	<-gen
}

func keysFor(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%02d@example.com", i)
	}
	return keys
}

// tableCounts returns the rows and the distinct e-mails in table.
func tableCounts(t *testing.T, gdb *gorm.DB, table string) (rows, distinct int64) {
	t.Helper()
	if err := gdb.Raw("SELECT COUNT(*), COUNT(DISTINCT email) FROM "+table).Row().Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// stormUntilRaced creates a table and runs a storm on it with run; for
// GORM's own FirstOrCreate, a storm that happened not to race proves
// nothing either way, so it runs another on a new table, three at most.
func stormUntilRaced(t *testing.T, gdb *gorm.DB, how string, unique bool, run func(table string) stormResult) (string, stormResult) {
	t.Helper()
	table := gormtest.CreateTable(t, gdb, "gormrf_race", raceDDL(unique))
	res := run(table)
	for try := 2; mustRace(how, gdb.Dialector.Name()) && !raced(t, gdb, table, res) && try <= 3; try++ {
		t.Logf("%s: no race in storm %d, again", how, try-1)
		table = gormtest.CreateTable(t, gdb, "gormrf_race", raceDDL(unique))
		res = run(table)
	}
	return table, res
}

// procStorm runs storm in procs child processes of goroutines each and
// adds up what they report.
func procStorm(t *testing.T, e gormtest.Engine, path, how, table string, keys, procs, goroutines int) stormResult {
	t.Helper()
	outs := gormtest.RunProcs(t, procs, "TestFirstOrCreate_RaceChild", map[string]string{
		"engine": e.Name, "path": path, "how": how, "table": table,
		"keys": strconv.Itoa(keys), "goroutines": strconv.Itoa(goroutines),
	}, 3*time.Minute)
	var res stormResult
	res.created = gormtest.Collect(outs, "created")
	for _, n := range gormtest.Collect(outs, "unique") {
		v, _ := strconv.Atoi(n)
		res.uniqueErrs += v
	}
	for _, n := range gormtest.Collect(outs, "other") {
		v, _ := strconv.Atoi(n)
		res.otherErrs += v
	}
	if errs := gormtest.Collect(outs, "error"); len(errs) > 0 {
		res.firstErr = errors.New(errs[0])
	}
	return res
}

// mustRace reports whether GORM's own FirstOrCreate, run as how on
// engine, must show the race. Inside a SQLite transaction it cannot: BEGIN
// IMMEDIATE serializes the whole SELECT-then-INSERT, which is correct, at
// the price of one writer at a time.
func mustRace(how, engine string) bool {
	return strings.HasPrefix(how, "gorm/") && !(how == gormTx && engine == "sqlite")
}

// raced reports whether a storm showed the race: an error or a duplicate.
func raced(t *testing.T, gdb *gorm.DB, table string, res stormResult) bool {
	rows, distinct := tableCounts(t, gdb, table)
	return res.uniqueErrs > 0 || rows > distinct
}

// checkStorm asserts the outcome of a storm of FirstOrCreate calls on keys.
// GORM's own must show the race (a unique-violation error or a duplicate
// row at least once); racefree's must show none: no error, one row per
// key, exactly one created per key.
func checkStorm(t *testing.T, gdb *gorm.DB, how, table string, keys []string, callsPerKey int, res stormResult) {
	t.Helper()
	rows, distinct := tableCounts(t, gdb, table)
	dups := rows - distinct
	t.Logf("%s: %d calls per key on %d keys: %d unique-violation errors, %d other errors, %d duplicate rows, %d created, %d retries; first error: %v",
		how, callsPerKey, len(keys), res.uniqueErrs, res.otherErrs, dups, len(res.created), res.retries, res.firstErr)
	if strings.HasPrefix(how, "gorm/") {
		if mustRace(how, gdb.Dialector.Name()) && res.uniqueErrs+int(dups) == 0 {
			t.Errorf("%s: no unique-violation error and no duplicate: the storm did not race", how)
		}
		return
	}
	if res.uniqueErrs+res.otherErrs != 0 {
		t.Errorf("%s: %d errors reached callers; first: %v", how, res.uniqueErrs+res.otherErrs, res.firstErr)
	}
	if rows != int64(len(keys)) || dups != 0 {
		t.Errorf("%s: %d rows for %d keys (%d duplicates)", how, rows, len(keys), dups)
	}
	created := slices.Sorted(slices.Values(res.created))
	if !slices.Equal(created, keys) {
		t.Errorf("%s: created reported for %v, want each of %v exactly once", how, created, keys)
	}
}

// TestFirstOrCreate_Race is the classic reproduction with 64 goroutines on
// each engine: GORM's own FirstOrCreate returns unique-violation errors
// (with a unique index) or makes duplicates (without one); gormrf's returns
// no error, one row per key, one created per key — on the pool, inside
// GORM's db.Transaction, and inside gormrf.RunInTx at SERIALIZABLE, whose
// retries the test counts.
func TestFirstOrCreate_Race(t *testing.T) {
	gormtest.Watchdog(t, 5*time.Minute)
	const goroutines = 64
	keys := keysFor(8)
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		gdb := e.Open(t, gormtest.SQLitePath(t), 16)
		ctx := context.Background()
		for _, unique := range []bool{true, false} {
			ways := []string{gormPool, gormrfPool, gormTx, gormrfTx, gormrfRunInTx}
			name := "unique"
			if !unique {
				name = "noindex"
				ways = []string{gormPool, gormrfPool, gormrfTx}
			}
			t.Run(name, func(t *testing.T) {
				for _, how := range ways {
					t.Run(how, func(t *testing.T) {
						table, res := stormUntilRaced(t, gdb, how, unique, func(table string) stormResult {
							return storm(ctx, gdb, how, table, keys, goroutines)
						})
						checkStorm(t, gdb, how, table, keys, goroutines, res)
						if how == gormrfRunInTx && e.Name != "sqlite" && res.retries == 0 {
							t.Errorf("%s: no transaction was retried: SERIALIZABLE storms on one key must conflict", how)
						}
					})
				}
			})
		}
	})
}

// TestFirstOrCreate_RaceProcesses is the reproduction from 4 OS processes
// of 16 goroutines each, all starting together, with the unique index
// (GORM's own: errors) and without (GORM's own: duplicates; gormrf:
// racefree's named lock, which excludes other processes too).
func TestFirstOrCreate_RaceProcesses(t *testing.T) {
	gormtest.Watchdog(t, 5*time.Minute)
	const procs, goroutines = 4, 16
	keys := keysFor(8)
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		path := gormtest.SQLitePath(t)
		gdb := e.Open(t, path, 4)
		for _, c := range []struct {
			how    string
			unique bool
		}{{gormPool, true}, {gormrfPool, true}, {gormrfTx, true}, {gormPool, false}, {gormrfPool, false}} {
			how := c.how
			name := how
			if !c.unique {
				name = "noindex/" + how
			}
			t.Run(name, func(t *testing.T) {
				table, res := stormUntilRaced(t, gdb, how, c.unique, func(table string) stormResult {
					return procStorm(t, e, path, how, table, len(keys), procs, goroutines)
				})
				checkStorm(t, gdb, how, table, keys, procs*goroutines, res)
			})
		}
	})
}

// TestFirstOrCreate_RaceChild is one process of
// TestFirstOrCreate_RaceProcesses; run alone it skips.
func TestFirstOrCreate_RaceChild(t *testing.T) {
	args, _, ok := gormtest.Child(t)
	if !ok {
		t.Skip("runs only as a child of TestFirstOrCreate_RaceProcesses")
	}
	n, _ := strconv.Atoi(args["keys"])
	goroutines, _ := strconv.Atoi(args["goroutines"])
	gdb := gormtest.Get(args["engine"]).Open(t, args["path"], 4)
	res := storm(context.Background(), gdb, args["how"], args["table"], keysFor(n), goroutines)
	for _, k := range res.created {
		gormtest.Report("created", k)
	}
	gormtest.Report("unique", res.uniqueErrs)
	gormtest.Report("other", res.otherErrs)
	if res.firstErr != nil {
		gormtest.Report("error", strings.ReplaceAll(res.firstErr.Error(), "\n", " "))
	}
}
