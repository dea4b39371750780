package racefree_test

import (
	"context"
	"errors"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestGetOrCreate_PlannedShapeChecksValues: once a shape of call has been
// planned, later calls of that shape still have every value checked: a
// wrong type, an unsupported type, a NULL lookup and a NULL into a NOT NULL
// column are refused exactly as on the first call, and nothing is written.
func TestGetOrCreate_PlannedShapeChecksValues(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_plan", gocUsersDDL)
		warm := func(lookup, defaults racefree.Values) {
			t.Helper()
			if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, lookup, defaults, racefree.Options{}); err != nil {
				t.Fatalf("warm-up %v %v: %v", lookup, defaults, err)
			}
		}
		warm(racefree.Values{"email": "w1"}, racefree.Values{"n": 1})
		warm(racefree.Values{"email": "w2"}, racefree.Values{"name": "W"})
		for _, tc := range []struct {
			name             string
			lookup, defaults racefree.Values
			want             error
		}{
			{"WrongType", racefree.Values{"email": "a"}, racefree.Values{"n": "seven"}, racefree.ErrInvalidInput},
			{"WrongTypeText", racefree.Values{"email": 42}, racefree.Values{"n": 1}, racefree.ErrInvalidInput},
			{"UnsupportedType", racefree.Values{"email": struct{ X int }{1}}, racefree.Values{"n": 1}, racefree.ErrInvalidInput},
			{"NullIntoNotNull", racefree.Values{"email": "a"}, racefree.Values{"name": nil}, racefree.ErrInvalidInput},
			{"NullLookup", racefree.Values{"email": nil}, racefree.Values{"n": 1}, racefree.ErrInvalidInput},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := racefree.GetOrCreate[gocUser](ctx, db, table, tc.lookup, tc.defaults, racefree.Options{})
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		if n := testdb.QueryInt(t, db, "SELECT COUNT(*) FROM "+table); n != 2 {
			t.Fatalf("%d rows, want the 2 of the warm-up: bad input wrote", n)
		}
	})
}

// TestGetOrCreate_PlanPerShape: calls with the same number of columns but
// other names, another result type or another verb each get their own
// plan: the lookup goes by the columns the call names.
func TestGetOrCreate_PlanPerShape(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_shape", `id {{id}}, email {{text}} NOT NULL, name {{text}} NOT NULL DEFAULT '', n INTEGER,
			CONSTRAINT {{table}}_email UNIQUE (email), CONSTRAINT {{table}}_name UNIQUE (name)`)
		a, created, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "e1"}, racefree.Values{"name": "n1"}, racefree.Options{})
		if err != nil || !created {
			t.Fatalf("by email: %+v %v %v", a, created, err)
		}
		// Same counts, the names swapped: must look up by name, and find a.
		b, created, err := racefree.GetOrCreate[gocUser](ctx, db, table, racefree.Values{"name": "n1"}, racefree.Values{"email": "other"}, racefree.Options{})
		if err != nil || created || b != a {
			t.Fatalf("by name: %+v created=%v err=%v, want %+v", b, created, err, a)
		}
		// Another result type of the same shape.
		v, created, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"email": "e1"}, racefree.Values{"name": "x"}, racefree.Options{})
		if err != nil || created || v["name"] != "n1" {
			t.Fatalf("as Values: %v created=%v err=%v", v, created, err)
		}
		// Another verb of the same shape: CreateOrGet inserts first.
		c, created, err := racefree.CreateOrGet[gocUser](ctx, db, table, racefree.Values{"email": "e2"}, racefree.Values{"name": "n2"}, racefree.Options{})
		if err != nil || !created || c.Email != "e2" {
			t.Fatalf("create-or-get: %+v created=%v err=%v", c, created, err)
		}
		// UpdateOrCreate of the same shape writes its values, the
		// lookup's plan notwithstanding.
		u, created, err := racefree.UpdateOrCreate[gocUser](ctx, db, table, racefree.Values{"email": "e2"}, racefree.Values{"name": "n3"}, racefree.Options{})
		if err != nil || created || u.Name != "n3" {
			t.Fatalf("update-or-create: %+v created=%v err=%v", u, created, err)
		}
	})
}

// TestGetOrCreate_ForgetSchemaDropsPlans: after the lookup's unique index
// is dropped and ForgetSchema called, a planned shape is planned again
// from the new catalog: demanding the constraint strategy is now an error,
// not a plan that still trusts the index.
func TestGetOrCreate_ForgetSchemaDropsPlans(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_forget", `id {{id}}, email {{text}} NOT NULL, n INTEGER`)
		testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_email ON "+table+" (email)")
		call := func() error {
			_, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"email": "a"}, racefree.Values{"n": 1},
				racefree.Options{Strategy: racefree.StrategyConstraint})
			return err
		}
		if err := call(); err != nil {
			t.Fatal(err)
		}
		drop := "DROP INDEX " + table + "_email"
		if e.Name == "mysql" {
			drop += " ON " + table
		}
		testdb.Exec(t, db, drop)
		db.ForgetSchema(table)
		if err := call(); !errors.Is(err, racefree.ErrNoCoveringIndex) {
			t.Fatalf("after dropping the index and ForgetSchema: err = %v, want ErrNoCoveringIndex", err)
		}
	})
}
