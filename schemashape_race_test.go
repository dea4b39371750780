package racefree_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// The schema-shape race: the table shapes Django, Rails and GORM
// migrations generate, each raced by shapeProcs processes of
// shapeGoroutines goroutines through GetOrCreate, CreateOrGet,
// UpdateOrCreate and GetOrCreateMany on fresh keys, round after round. The
// rows are checked afterwards: one per key, exactly one caller told
// created, no error surfaced; and the test checks that the race happened
// (calls on one key from different processes overlapped in time, and on
// constraint-decided shapes some calls lost the race to create).
const (
	shapeProcs      = 4
	shapeGoroutines = 64
	shapeRounds     = 5
	shapeKeys       = 4 // per round
	shapePool       = 4 // connections per process
)

// schemaShape is one table shape under test.
type schemaShape struct {
	name    string
	engines []string // nil: every engine
	ddl     string   // CreateTable's column list
	extra   []string // statements run after CREATE TABLE ({{table}} expanded)
	// lookup, defaults and values of key k; variant lets a shape spell
	// one key several ways (a case-insensitive collation).
	lookup   func(k string, variant int) racefree.Values
	defaults func(k string) racefree.Values
	// rowsPerKey is a query that returns one count per key: each must be
	// 1, and there must be as many counts as keys.
	rowsPerKey string
	// lostRaces: the shape's races are decided by a unique index, so
	// some calls must lose a race (the others are decided by a lock).
	lostRaces bool
}

func text(k string) racefree.Values { return racefree.Values{"note": "n-" + k} }

var schemaShapes = []schemaShape{
	{
		// Django: unique=True on first_name plus unique_together
		// (first_name, last_name). MariaDB names the first unique index
		// in definition order, so it is declared first.
		name: "UniqueColumnAndPair",
		ddl: `id {{id}}, first_name {{text}} NOT NULL, last_name {{text}} NOT NULL, note {{text}},
			CONSTRAINT {{table}}_first UNIQUE (first_name), CONSTRAINT {{table}}_pair UNIQUE (first_name, last_name)`,
		lookup: func(k string, _ int) racefree.Values {
			return racefree.Values{"first_name": "f-" + k, "last_name": "l-" + k}
		},
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY first_name, last_name",
		lostRaces:  true,
	},
	{
		// Rails: add_index [:a, :b], unique: true.
		name: "UniquePairOnly",
		ddl:  `id {{id}}, first_name {{text}} NOT NULL, last_name {{text}} NOT NULL, note {{text}}, CONSTRAINT {{table}}_pair UNIQUE (first_name, last_name)`,
		lookup: func(k string, _ int) racefree.Values {
			return racefree.Values{"first_name": "f", "last_name": "l-" + k}
		},
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY first_name, last_name",
		lostRaces:  true,
	},
	{
		// GORM: two uniqueIndex tags. The index of the default column is
		// declared first, so that MariaDB reports it for a lost race on
		// the lookup's.
		name: "TwoUniqueColumns",
		ddl: `id {{id}}, username {{text}} NOT NULL, email {{text}} NOT NULL, note {{text}},
			CONSTRAINT {{table}}_username UNIQUE (username), CONSTRAINT {{table}}_email UNIQUE (email)`,
		lookup:     func(k string, _ int) racefree.Values { return racefree.Values{"email": k + "@x"} },
		defaults:   func(k string) racefree.Values { return racefree.Values{"username": "u-" + k, "note": "n"} },
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY email",
		lostRaces:  true,
	},
	{
		// Django UniqueConstraint(Lower("email")) beside unique=True.
		name:       "ExpressionIndexBesideUnique",
		engines:    []string{"postgres", "sqlite"},
		ddl:        `id {{id}}, email {{text}} NOT NULL, note {{text}}, CONSTRAINT {{table}}_email UNIQUE (email)`,
		extra:      []string{"CREATE UNIQUE INDEX {{table}}_lower ON {{table}} (lower(email))"},
		lookup:     func(k string, _ int) racefree.Values { return racefree.Values{"email": "User-" + k + "@X"} },
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY lower(email)",
		lostRaces:  true,
	},
	{
		// UniqueConstraint(Lower("email")) alone: no index covers the
		// lookup column itself, so a named lock decides.
		name:       "ExpressionIndexOnly",
		engines:    []string{"postgres", "sqlite"},
		ddl:        `id {{id}}, email {{text}} NOT NULL, note {{text}}`,
		extra:      []string{"CREATE UNIQUE INDEX {{table}}_lower ON {{table}} (lower(email))"},
		lookup:     func(k string, _ int) racefree.Values { return racefree.Values{"email": "User-" + k + "@X"} },
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY lower(email)",
	},
	{
		// Soft delete: unique among the rows not deleted.
		name:       "PartialUniqueIndex",
		engines:    []string{"postgres", "sqlite"},
		ddl:        `id {{id}}, email {{text}} NOT NULL, deleted_at {{text}}, note {{text}}`,
		extra:      []string{"CREATE UNIQUE INDEX {{table}}_live ON {{table}} (email) WHERE deleted_at IS NULL"},
		lookup:     func(k string, _ int) racefree.Values { return racefree.Values{"email": k + "@x", "deleted_at": nil} },
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} WHERE deleted_at IS NULL GROUP BY email",
	},
	{
		// MariaDB's default collation is case-insensitive: "Key" and
		// "KEY" are one key, and whoever asks gets the row as created.
		name:       "CaseInsensitiveCollation",
		engines:    []string{"mysql", "sqlite"},
		ddl:        `id {{id}}, name {{ci_text}} NOT NULL, note {{text}}, CONSTRAINT {{table}}_name UNIQUE (name)`,
		lookup:     func(k string, v int) racefree.Values { return racefree.Values{"name": caseVariant("Key-"+k, v)} },
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY lower(name)",
		lostRaces:  true,
	},
	{
		// A nullable unique column, looked up by value.
		name:       "NullableUniqueColumn",
		ddl:        `id {{id}}, code {{text}}, note {{text}}, CONSTRAINT {{table}}_code UNIQUE (code)`,
		lookup:     func(k string, _ int) racefree.Values { return racefree.Values{"code": "c-" + k} },
		defaults:   text,
		rowsPerKey: "SELECT COUNT(*) FROM {{table}} GROUP BY code",
		lostRaces:  true,
	},
}

// caseVariant spells s in one of three cases.
func caseVariant(s string, v int) string {
	switch v % 3 {
	case 1:
		return strings.ToUpper(s)
	case 2:
		return strings.ToLower(s)
	}
	return s
}

func (s schemaShape) runsOn(engine string) bool {
	return s.engines == nil || slices.Contains(s.engines, engine)
}

// mustShapeTable creates the shape's table on db.
func mustShapeTable(tb testing.TB, db *racefree.DB, s schemaShape) string {
	tb.Helper()
	ci := map[string]string{"mysql": "VARCHAR(191) COLLATE utf8mb4_general_ci", "sqlite": "TEXT COLLATE NOCASE"}[db.Dialect().Name()]
	table := testdb.CreateTable(tb, db, "shape", strings.ReplaceAll(s.ddl, "{{ci_text}}", ci))
	for _, stmt := range s.extra {
		testdb.Exec(tb, db, strings.ReplaceAll(stmt, "{{table}}", table))
	}
	return table
}

// shapeCall is one finished call, as a child reports it.
type shapeCall struct {
	Key     string `json:"k"`
	Proc    int    `json:"p"`
	Start   int64  `json:"s"` // UnixNano
	End     int64  `json:"e"`
	Created bool   `json:"c"`
}

func TestSchemaShapes_RaceProcesses(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 4*time.Minute)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		values := map[string]string{"dsn": dsn, "barrier": testdb.CreateTable(t, db, "barrier", "shape INTEGER NOT NULL, proc INTEGER NOT NULL")}
		var shapes []int
		for i, s := range schemaShapes {
			if s.runsOn(e.Name) {
				values["table"+strconv.Itoa(i)] = mustShapeTable(t, db, s)
				shapes = append(shapes, i)
			}
		}
		results := proctest.Run(t, shapeProcs, "TestSchemaShapesRaceChild", values, 220*time.Second)
		for _, i := range shapes {
			s := schemaShapes[i]
			t.Run(s.name, func(t *testing.T) {
				checkShape(t, db, s, values["table"+strconv.Itoa(i)], results, i)
			})
		}
	})
}

// checkShape checks one shape's table and the calls the children made.
func checkShape(t *testing.T, db *racefree.DB, s schemaShape, table string, results []proctest.Result, i int) {
	var calls []shapeCall
	for _, v := range proctest.Values(results, "calls"+strconv.Itoa(i)) {
		var part []shapeCall
		if err := json.Unmarshal([]byte(v), &part); err != nil {
			t.Fatalf("decode calls: %v", err)
		}
		calls = append(calls, part...)
	}
	var lost int64
	for _, v := range proctest.Values(results, "lost"+strconv.Itoa(i)) {
		n, _ := strconv.ParseInt(v, 10, 64)
		lost += n
	}
	wantKeys := shapeRounds * shapeKeys
	created := map[string]int{}
	for _, c := range calls {
		if c.Created {
			created[c.Key]++
		}
	}
	if len(calls) == 0 {
		t.Fatal("the children reported no calls")
	}
	for k := range keySet(calls) {
		if created[k] != 1 {
			t.Errorf("key %s: %d callers told created, want 1", k, created[k])
		}
	}
	counts := queryInts(t, db, strings.ReplaceAll(s.rowsPerKey, "{{table}}", table))
	if len(counts) != wantKeys {
		t.Errorf("%d keys in the table, want %d", len(counts), wantKeys)
	}
	for _, n := range counts {
		if n != 1 {
			t.Errorf("a key has %d rows: duplicates", n)
		}
	}
	// The race happened: for most keys, calls from two processes were in
	// flight at once.
	byKey := map[string][]shapeCall{}
	for _, c := range calls {
		byKey[c.Key] = append(byKey[c.Key], c)
	}
	raced := 0
	for _, cs := range byKey {
		if overlapAcrossProcs(cs) {
			raced++
		}
	}
	if raced < wantKeys/2 {
		t.Errorf("only %d of %d keys were raced from two processes at once: the test did not race", raced, wantKeys)
	}
	if s.lostRaces && lost == 0 {
		t.Errorf("no call lost a race to create a row: the test did not race")
	}
	t.Logf("%d calls from %d processes × %d goroutines; %d of %d keys raced across processes; %d lost races answered with the winner's row",
		len(calls), shapeProcs, shapeGoroutines, raced, wantKeys, lost)
}

// overlapAcrossProcs reports whether two of cs, from different processes,
// were in flight at the same time.
func overlapAcrossProcs(cs []shapeCall) bool {
	slices.SortFunc(cs, func(a, b shapeCall) int { return cmp.Compare(a.Start, b.Start) })
	for i, a := range cs {
		for _, b := range cs[i+1:] {
			if b.Start >= a.End {
				break
			}
			if b.Proc != a.Proc {
				return true
			}
		}
	}
	return false
}

func keySet(calls []shapeCall) map[string]bool {
	m := map[string]bool{}
	for _, c := range calls {
		m[c.Key] = true
	}
	return m
}

// queryInts runs a query returning one integer per row.
func queryInts(tb testing.TB, db *racefree.DB, query string) []int64 {
	tb.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), query)
	if err != nil {
		tb.Fatalf("query %q: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestSchemaShapesRaceChild is one process of TestSchemaShapes_RaceProcesses:
// every shape in turn, the processes meeting at a barrier before each.
func TestSchemaShapesRaceChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 210*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(shapePool)
	for i, s := range schemaShapes {
		table, ok := args.Values["table"+strconv.Itoa(i)]
		if !ok {
			continue
		}
		if err := barrier(ctx, db, args.Values["barrier"], i, args.Index, shapeProcs); err != nil {
			t.Fatalf("%s: barrier: %v", s.name, err)
		}
		calls, errs := raceShape(ctx, db, s, table, args.Index)
		errorsSurfaced(t, s.name+": ", errs)
		enc, _ := json.Marshal(calls)
		proctest.Report("calls"+strconv.Itoa(i), string(enc))
		proctest.Report("lost"+strconv.Itoa(i), racefree.LostRaces(db))
		racefree.ResetLostRaces(db)
	}
}

// barrier waits until n processes have reached it: each writes its row,
// then waits for the others'.
func barrier(ctx context.Context, db *racefree.DB, table string, step, proc, n int) error {
	ph := db.Dialect().Placeholder
	if _, err := db.SQL().ExecContext(ctx, "INSERT INTO "+table+" (shape, proc) VALUES ("+ph(1)+", "+ph(2)+")", step, proc); err != nil {
		return err
	}
	for {
		var got int
		if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE shape = "+ph(1), step).Scan(&got); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// shapeRow is what every shape's calls read back.
type shapeRow struct {
	ID   int64  `db:"id"`
	Note string `db:"note"`
}

// raceShape runs shapeGoroutines goroutines through shapeRounds rounds of
// shapeKeys fresh keys, goroutine g calling verb g%4.
func raceShape(ctx context.Context, db *racefree.DB, s schemaShape, table string, proc int) ([]shapeCall, []error) {
	var mu sync.Mutex // guards calls and errs
	var calls []shapeCall
	var errs []error
	record := func(c shapeCall, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", c.Key, err))
			return
		}
		calls = append(calls, c)
	}
	var wg sync.WaitGroup
	for g := range shapeGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(proc), uint64(g)))
			for r := range shapeRounds {
				keys := make([]string, shapeKeys)
				for k := range keys {
					keys[k] = fmt.Sprintf("r%d-k%d", r, k)
				}
				rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
				variant := proc + g
				start := time.Now().UnixNano()
				switch g % 4 {
				case 0, 1, 2:
					for _, k := range keys[:2] {
						start := time.Now().UnixNano()
						created, err := shapeCallOne(ctx, db, s, table, k, variant, g%4)
						record(shapeCall{Key: k, Proc: proc, Start: start, End: time.Now().UnixNano(), Created: created}, err)
					}
				case 3:
					items := make([]racefree.Item, len(keys))
					for i, k := range keys {
						items[i] = racefree.Item{Lookup: s.lookup(k, variant), Defaults: s.defaults(k)}
					}
					res, err := racefree.GetOrCreateMany[shapeRow](ctx, db, table, items, racefree.Options{})
					end := time.Now().UnixNano()
					for i, k := range keys {
						c := shapeCall{Key: k, Proc: proc, Start: start, End: end}
						if err == nil {
							c.Created = res[i].Created
							if res[i].Row.ID == 0 {
								err = fmt.Errorf("GetOrCreateMany: no row for item %d", i)
							}
						}
						record(c, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	return calls, errs
}

// shapeCallOne runs one single-row call of the family on key k.
func shapeCallOne(ctx context.Context, db *racefree.DB, s schemaShape, table, k string, variant, verb int) (bool, error) {
	lookup, defaults := s.lookup(k, variant), s.defaults(k)
	var row shapeRow
	var created bool
	var err error
	switch verb {
	case 0:
		row, created, err = racefree.GetOrCreate[shapeRow](ctx, db, table, lookup, defaults, racefree.Options{})
	case 1:
		row, created, err = racefree.CreateOrGet[shapeRow](ctx, db, table, lookup, defaults, racefree.Options{})
	default:
		// The defaults the row needs to be created go in CreateOnly; the
		// value set on both paths is the note.
		create := racefree.Values{}
		for c, v := range defaults {
			if c != "note" {
				create[c] = v
			}
		}
		row, created, err = racefree.UpdateOrCreate[shapeRow](ctx, db, table, lookup,
			racefree.Values{"note": "n-" + k}, racefree.Options{CreateOnly: create})
	}
	if err == nil && row.ID == 0 {
		err = fmt.Errorf("no row")
	}
	return created, err
}
