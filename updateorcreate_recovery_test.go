package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
	"github.com/racefree/racefree/session"
)

// recoveryDB is base seen through a faultPool that is not faulting yet.
func recoveryDB(t *testing.T, base *racefree.DB) (*racefree.DB, *faultPool) {
	t.Helper()
	fp := &faultPool{Pool: session.SQLPool{DB: base.SQL()}}
	db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	return db, fp
}

// An UpdateOrCreate on the pool whose write lost its connection runs
// again — its values are constants — and says exactly what it knows about
// created. A lost statement that could have inserted (PostgreSQL's
// upsert, an INSERT) may have: when the next run then finds the row,
// created is false and the error ErrCreatedUnknown, whether the row was
// there before or not (nothing tells the two apart); when the next run
// creates it, the lost one had not. A lost statement that cannot insert
// (MySQL's UPDATE) leaves created exact.
func TestUpdateOrCreate_RecoversLostConnection(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			defer testdb.Watchdog(t, time.Minute)()
			base := e.Open(t)
			table := testdb.CreateTable(t, base, "uoc_lost", "id {{id}}, k {{text}} NOT NULL, v INT, CONSTRAINT {{table}}_k UNIQUE (k)")
			// The statement that may create the row: PostgreSQL's one
			// upsert, MySQL's INSERT after an UPDATE that matched nothing.
			writer := "INSERT"
			for _, tc := range []struct {
				name        string
				exists      bool
				plan        func(string) fault
				wantCreated bool
				wantUnknown bool
			}{
				{name: "create lost before it ran", plan: once(writer, table, lostBefore), wantCreated: true},
				{name: "create lost after it ran", plan: once(writer, table, lostAfter), wantUnknown: true},
				{name: "update lost before it ran", exists: true, plan: once(firstWrite(name), table, lostBefore), wantUnknown: name == "postgres"},
				{name: "update lost after it ran", exists: true, plan: once(firstWrite(name), table, lostAfter), wantUnknown: name == "postgres"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					db, fp := recoveryDB(t, base)
					key := testdb.UniqueName("k")
					if tc.exists {
						testdb.Exec(t, base, "INSERT INTO "+table+" (k, v) VALUES ('"+key+"', 1)")
					}
					fp.plan = tc.plan
					row, created, err := racefree.UpdateOrCreate[racefree.Values](context.Background(), db, table,
						racefree.Values{"k": key}, racefree.Values{"v": 7}, racefree.Options{})
					if fp.faults != 1 {
						t.Fatalf("%d faults injected, want 1 (statements %q)", fp.faults, fp.seen)
					}
					if created != tc.wantCreated {
						t.Errorf("created = %v, want %v (err %v)", created, tc.wantCreated, err)
					}
					if got := errors.Is(err, racefree.ErrCreatedUnknown); got != tc.wantUnknown {
						t.Errorf("err = %v, want created-unknown: %v", err, tc.wantUnknown)
					}
					if !tc.wantUnknown && err != nil {
						t.Errorf("err = %v", err)
					}
					if row["k"] != key || fmt.Sprint(row["v"]) != "7" {
						t.Errorf("row = %v, want the row of %s with v = 7", row, key)
					}
					if n := testdb.QueryInt(t, base, "SELECT COUNT(*) FROM "+table+" WHERE k = '"+key+"' AND v = 7"); n != 1 {
						t.Errorf("%d rows for the key with v = 7, want 1", n)
					}
				})
			}
		})
	}
}

// firstWrite is the first statement an UpdateOrCreate of an existing row
// sends: PostgreSQL's upsert, MySQL's UPDATE.
func firstWrite(engine string) string {
	if engine == "postgres" {
		return "INSERT"
	}
	return "UPDATE"
}

// A GetOrCreateMany on the pool whose statement lost its connection runs
// again and returns every row; Created is exact unless a lost INSERT had
// run, which the error says (ErrCreatedUnknown) while the rows are all
// returned.
func TestGetOrCreateMany_RecoversLostConnection(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		e, _ := testdb.Get(name)
		t.Run(name, func(t *testing.T) {
			e.Require(t)
			defer testdb.Watchdog(t, time.Minute)()
			base := e.Open(t)
			table := testdb.CreateTable(t, base, "gocm_lost", "id {{id}}, k {{text}} NOT NULL, v INT, CONSTRAINT {{table}}_k UNIQUE (k)")
			for _, tc := range []struct {
				name        string
				plan        func(string) fault
				wantCreated bool
				wantUnknown bool
			}{
				{name: "read lost", plan: once("SELECT", table, lostBefore), wantCreated: true},
				{name: "insert lost before it ran", plan: once("INSERT", table, lostBefore), wantCreated: true},
				{name: "insert lost after it ran", plan: once("INSERT", table, lostAfter), wantUnknown: true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if name == "mysql" && tc.name != "read lost" {
						t.Skip("MySQL/MariaDB insert a batch in a transaction of its own, whose statements this fault pool does not reach: TestGetOrCreateMany_RecoversLostCommit cuts its COMMIT")
					}
					db, fp := recoveryDB(t, base)
					old, fresh := testdb.UniqueName("old"), testdb.UniqueName("new")
					testdb.Exec(t, base, "INSERT INTO "+table+" (k, v) VALUES ('"+old+"', 1)")
					fp.plan = tc.plan
					items := []racefree.Item{
						{Lookup: racefree.Values{"k": old}, Defaults: racefree.Values{"v": 7}},
						{Lookup: racefree.Values{"k": fresh}, Defaults: racefree.Values{"v": 7}},
					}
					res, err := racefree.GetOrCreateMany[racefree.Values](context.Background(), db, table, items, racefree.Options{})
					if fp.faults != 1 {
						t.Fatalf("%d faults injected, want 1 (statements %q)", fp.faults, fp.seen)
					}
					if got := errors.Is(err, racefree.ErrCreatedUnknown) && errors.Is(err, racefree.ErrCommitUnknown); got != tc.wantUnknown {
						t.Errorf("err = %v, want created-unknown: %v", err, tc.wantUnknown)
					}
					if !tc.wantUnknown && err != nil {
						t.Fatalf("err = %v", err)
					}
					if len(res) != 2 || res[0].Row["k"] != old || res[1].Row["k"] != fresh || res[0].Created || res[1].Created != tc.wantCreated {
						t.Fatalf("results %+v: want the old row (not created) and the new one (created %v)", res, tc.wantCreated)
					}
					if n := testdb.QueryInt(t, base, "SELECT COUNT(*) FROM "+table+" WHERE k IN ('"+old+"', '"+fresh+"')"); n != 2 {
						t.Errorf("%d rows, want 2", n)
					}
				})
			}
		})
	}
}

// MySQL/MariaDB insert a batch in a transaction of their own: a batch on
// the pool whose COMMIT lost its answer runs again, returns every row, and
// says what it knows about Created.
func TestGetOrCreateMany_RecoversLostCommit(t *testing.T) {
	e, _ := testdb.Get("mysql")
	e.Require(t)
	defer testdb.Watchdog(t, time.Minute)()
	base := e.Open(t)
	if !base.Dialect().Features().Has(dialect.Returning) {
		// MySQL 8 and TiDB: no IGNORE-and-read-back mode, so a one-chunk
		// batch is one plain INSERT on the pool, with no COMMIT to cut
		// (TestGetOrCreateMany_RecoversLostConnection covers it there).
		t.Skipf("%s: a batch of one chunk runs as one statement, without a transaction of its own", base.Dialect().Server())
	}
	table := testdb.CreateTable(t, base, "gocm_lostcommit", "id {{id}}, k {{text}} NOT NULL, v INT, CONSTRAINT {{table}}_k UNIQUE (k)")
	for _, tc := range []struct {
		name        string
		f           fault
		wantUnknown bool
	}{
		{name: "commit lost before it ran", f: lostBefore},
		{name: "commit lost after it ran", f: lostAfter, wantUnknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &commitFaultPool{Pool: session.SQLPool{DB: base.SQL()}}
			db, err := racefree.NewSession(context.Background(), fp, base.Dialect())
			if err != nil {
				t.Fatal(err)
			}
			old, fresh := testdb.UniqueName("old"), testdb.UniqueName("new")
			testdb.Exec(t, base, "INSERT INTO "+table+" (k, v) VALUES ('"+old+"', 1)")
			fp.plan = tc.f
			items := []racefree.Item{
				{Lookup: racefree.Values{"k": old}, Defaults: racefree.Values{"v": 7}},
				{Lookup: racefree.Values{"k": fresh}, Defaults: racefree.Values{"v": 7}},
			}
			res, err := racefree.GetOrCreateMany[racefree.Values](context.Background(), db, table, items, racefree.Options{})
			if fp.faults != 1 {
				t.Fatalf("%d faults injected, want 1", fp.faults)
			}
			if got := errors.Is(err, racefree.ErrCreatedUnknown); got != tc.wantUnknown {
				t.Errorf("err = %v, want created-unknown: %v", err, tc.wantUnknown)
			}
			if !tc.wantUnknown && err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(res) != 2 || res[0].Row["k"] != old || res[1].Row["k"] != fresh || res[0].Created || res[1].Created == tc.wantUnknown {
				t.Fatalf("results %+v: want the old row (not created) and the new one (created %v)", res, !tc.wantUnknown)
			}
			if n := testdb.QueryInt(t, base, "SELECT COUNT(*) FROM "+table+" WHERE k IN ('"+old+"', '"+fresh+"')"); n != 2 {
				t.Errorf("%d rows, want 2", n)
			}
		})
	}
}
