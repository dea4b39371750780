package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/proctest"
	"github.com/racefree/racefree/internal/testdb"
)

// The partial-update race: partialWriters goroutines in each of
// partialProcs processes own one column each of one row, and set it again
// and again with UpdateOrCreate, naming only that column, while
// partialReaders goroutines read the row with GetOrCreate. The row has a
// NOT NULL column without a default that no call names: an update needs
// it not, and a hit needs no defaults. Afterwards every column holds its
// owner's last value: no update was lost.
const (
	partialProcs   = 4
	partialWriters = 16 // per process: 64 columns in all
	partialReaders = 8
	partialWrites  = 12 // per writer
)

func mustPartialTable(tb testing.TB, db *racefree.DB) string {
	tb.Helper()
	cols := []string{"id INTEGER PRIMARY KEY", "req {{text}} NOT NULL"}
	for c := range partialProcs * partialWriters {
		cols = append(cols, fmt.Sprintf("c%d INTEGER NOT NULL DEFAULT 0", c))
	}
	table := testdb.CreateTable(tb, db, "partial", strings.Join(cols, ", "))
	testdb.Exec(tb, db, "INSERT INTO "+table+" (id, req) VALUES (1, 'set once')")
	return table
}

func TestUpdateOrCreate_PartialUpdateRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 150*time.Second)()
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		table := mustPartialTable(t, db)
		results := proctest.Run(t, partialProcs, "TestUpdateOrCreatePartialChild", map[string]string{"dsn": dsn, "table": table}, 140*time.Second)
		var overlaps int64
		for _, v := range proctest.Values(results, "overlaps") {
			n, _ := strconv.ParseInt(v, 10, 64)
			overlaps += n
		}
		for c := range partialProcs * partialWriters {
			if got := testdb.QueryInt(t, db, fmt.Sprintf("SELECT c%d FROM %s WHERE id = 1", c, table)); got != partialWrites {
				t.Errorf("column c%d = %d, want %d: an update was lost", c, got, partialWrites)
			}
		}
		var req string
		if err := db.SQL().QueryRowContext(context.Background(), "SELECT req FROM "+table+" WHERE id = 1").Scan(&req); err != nil || req != "set once" {
			t.Errorf("req = %q (%v), want it untouched", req, err)
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 1 {
			t.Errorf("%d rows, want 1", n)
		}
		// The race happened: updates of the row were in flight at once.
		if overlaps == 0 {
			t.Error("no two updates of the row were in flight at once: the test did not race")
		}
		t.Logf("%d processes × %d writers × %d partial updates, %d readers each; %d updates began while another of the same process was in flight",
			partialProcs, partialWriters, partialWrites, partialReaders, overlaps)
	})
}

// TestUpdateOrCreatePartialChild is one process of
// TestUpdateOrCreate_PartialUpdateRace.
func TestUpdateOrCreatePartialChild(t *testing.T) {
	args, ok := proctest.Child(t)
	if !ok {
		t.Skip("runs only as a child of proctest.Run")
	}
	defer testdb.Watchdog(t, 130*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	db := testdb.Open(t, args.Values["dsn"])
	db.SQL().SetMaxOpenConns(6)
	table := args.Values["table"]
	type row struct {
		ID  int64  `db:"id"`
		Req string `db:"req"`
	}
	var inFlight, overlaps sync.Mutex // inFlight guards active; overlaps guards seen
	active, seen := 0, int64(0)
	var mu sync.Mutex // guards errs
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range partialWriters {
		col := fmt.Sprintf("c%d", args.Index*partialWriters+w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= partialWrites; n++ {
				inFlight.Lock()
				active++
				if active > 1 {
					overlaps.Lock()
					seen++
					overlaps.Unlock()
				}
				inFlight.Unlock()
				r, created, err := racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{col: n}, racefree.Options{})
				inFlight.Lock()
				active--
				inFlight.Unlock()
				switch {
				case err != nil:
					fail(fmt.Errorf("%s = %d: %w", col, n, err))
				case created || r.Req != "set once":
					fail(fmt.Errorf("%s = %d: created=%v row %+v", col, n, created, r))
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range partialReaders {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				// A hit: the defaults would lack req, and are not needed.
				r, created, err := racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, nil, racefree.Options{})
				if err != nil || created || r.Req != "set once" {
					fail(fmt.Errorf("read: %+v created=%v err=%v", r, created, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	errorsSurfaced(t, "", errs)
	proctest.Report("overlaps", seen)
}

// TestUpdateOrCreate_RequiredOnlyToCreate: a missing NOT NULL column is
// refused only when the row must be created, naming every missing column,
// and nothing is written.
func TestUpdateOrCreate_RequiredOnlyToCreate(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "req", "id INTEGER PRIMARY KEY, a {{text}} NOT NULL, b {{text}} NOT NULL, note {{text}}")
		type row struct {
			ID   int64   `db:"id"`
			A    string  `db:"a"`
			Note *string `db:"note"`
		}
		for _, call := range []struct {
			name string
			do   func() error
		}{
			{"UpdateOrCreate", func() error {
				_, _, err := racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{"note": "x"}, racefree.Options{})
				return err
			}},
			{"GetOrCreate", func() error {
				_, _, err := racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{"note": "x"}, racefree.Options{})
				return err
			}},
			{"CreateOrGet", func() error {
				_, _, err := racefree.CreateOrGet[row](ctx, db, table, racefree.Values{"id": 1}, nil, racefree.Options{})
				return err
			}},
			{"GetOrCreateMany", func() error {
				_, err := racefree.GetOrCreateMany[row](ctx, db, table, []racefree.Item{{Lookup: racefree.Values{"id": 1}}}, racefree.Options{})
				return err
			}},
			{"UpdateOrCreateFunc", func() error {
				_, _, err := racefree.UpdateOrCreateFunc(ctx, db, table, racefree.Values{"id": 1}, func(*row) (racefree.Values, error) {
					return racefree.Values{"note": "x"}, nil
				}, racefree.Options{})
				return err
			}},
		} {
			err := call.do()
			if !errors.Is(err, racefree.ErrInvalidInput) || !strings.Contains(err.Error(), `"a", "b"`) {
				t.Errorf("%s of a missing row without a and b: err = %v, want ErrInvalidInput naming both", call.name, err)
			}
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows written by refused calls", n)
		}

		// Created with everything; then partial updates and hits work.
		r, created, err := racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{"note": "x"},
			racefree.Options{CreateOnly: racefree.Values{"a": "A", "b": "B"}})
		if err != nil || !created || r.A != "A" {
			t.Fatalf("create: %+v created=%v err=%v", r, created, err)
		}
		r, created, err = racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{"note": "y"},
			racefree.Options{CreateOnly: racefree.Values{"a": "not applied to an existing row"}})
		if err != nil || created || r.A != "A" || r.Note == nil || *r.Note != "y" {
			t.Fatalf("partial update: %+v created=%v err=%v", r, created, err)
		}
		// The same values again: on MySQL an UPDATE that changes nothing
		// reports no row, which must not be taken for a missing one.
		if _, created, err = racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, racefree.Values{"note": "y"}, racefree.Options{}); err != nil || created {
			t.Fatalf("identical partial update: created=%v err=%v", created, err)
		}
		if _, created, err = racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"id": 1}, nil, racefree.Options{}); err != nil || created {
			t.Fatalf("hit without required defaults: created=%v err=%v", created, err)
		}
		if _, _, err = racefree.UpdateOrCreate[row](ctx, db, table, racefree.Values{"id": 2}, racefree.Values{"a": "x"},
			racefree.Options{CreateOnly: racefree.Values{"a": "y", "b": "z"}}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("a column in both values and CreateOnly: err = %v, want ErrInvalidInput", err)
		}
		if _, _, err = racefree.GetOrCreate[row](ctx, db, table, racefree.Values{"id": 2}, nil,
			racefree.Options{CreateOnly: racefree.Values{"a": "y"}}); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("CreateOnly on GetOrCreate: err = %v, want ErrInvalidInput", err)
		}
	})
}
