package racefree_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/testdb"
)

// TestReadTable checks each dialect's catalog reading: columns with
// nullability and defaults, and the unique indexes that can arbitrate a
// lookup, leaving out partial, expression and prefix ones.
func TestReadTable(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "schema", `id {{id}}, a {{text}} NOT NULL, b {{text}}, c INTEGER, d {{text}} DEFAULT 'x',
			CONSTRAINT {{table}}_a UNIQUE (a), CONSTRAINT {{table}}_bc UNIQUE (b, c)`)
		switch e.Name {
		case "postgres":
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_partial ON "+table+" (d) WHERE c > 0")
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_expr ON "+table+" (lower(b))")
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_nnd ON "+table+" (c, d) NULLS NOT DISTINCT")
		case "sqlite":
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_partial ON "+table+" (d) WHERE c > 0")
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_expr ON "+table+" (lower(b))")
		case "mysql":
			testdb.Exec(t, db, "CREATE UNIQUE INDEX "+table+"_prefix ON "+table+" (d(10))")
		}
		sr, ok := db.Dialect().(dialect.SchemaReader)
		if !ok {
			t.Fatalf("%s dialect has no SchemaReader", e.Name)
		}
		tb, err := sr.ReadTable(ctx, db.Session(), table)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range tb.Columns {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, ","); got != "id,a,b,c,d" {
			t.Errorf("columns = %s", got)
		}
		if a, _ := tb.Column("a"); a.Nullable || a.HasDefault {
			t.Errorf("a = %+v, want NOT NULL without default", a)
		}
		if b, _ := tb.Column("b"); !b.Nullable {
			t.Errorf("b = %+v, want nullable", b)
		}
		if id, _ := tb.Column("id"); !id.HasDefault {
			t.Errorf("id = %+v, want generated", id)
		}
		var got []string
		for _, ix := range tb.Unique {
			cols := slices.Clone(ix.Columns)
			slices.Sort(cols)
			s := strings.Join(cols, "+")
			if ix.Primary {
				s = "pk:" + s
			}
			if ix.NullsNotDistinct {
				s += ":nnd"
			}
			got = append(got, s)
		}
		slices.Sort(got)
		want := []string{"a", "b+c", "pk:id"}
		if e.Name == "postgres" {
			want = []string{"a", "b+c", "c+d:nnd", "pk:id"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("unique indexes = %v, want %v", got, want)
		}
		if _, err := sr.ReadTable(ctx, db.Session(), "no_such_table_xyz"); !errors.Is(err, dialect.ErrNoTable) {
			t.Errorf("missing table: err = %v, want ErrNoTable", err)
		}
	})
}
