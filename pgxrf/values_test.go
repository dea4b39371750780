package pgxrf_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// valueTypes are PostgreSQL column types with a literal of each; the
// pgx-native path must read them into racefree.Values exactly as the
// database/sql path does.
var valueTypes = []struct{ typ, literal string }{
	{"smallint", "-7"},
	{"integer", "2147483647"},
	{"bigint", "9007199254740993"},
	{"numeric(12,3)", "1234.500"},
	{"numeric", "0.1"},
	{"real", "1.5"},
	{"double precision", "2.25"},
	{"boolean", "true"},
	{"text", "'héllo'"},
	{"varchar(10)", "'v'"},
	{"char(3)", "'c'"},
	{"bytea", `'\x00ff10'`},
	{"uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"},
	{"json", `'{"b": 1, "a": [true, null]}'`},
	{"jsonb", `'{"b": 1, "a": [true, null]}'`},
	{"date", "'2026-11-30'"},
	{"timestamp", "'2026-11-30 12:34:56.789'"},
	{"timestamptz", "'2026-11-30 12:34:56.789+02'"},
	{"time", "'12:34:56'"},
	{"timetz", "'12:34:56+02'"},
	{"interval", "'1 day 02:03:04'"},
	{"integer[]", "'{1,2,NULL}'"},
	{"text[]", `'{"a b",c}'`},
	{"inet", "'192.168.0.1/24'"},
	{"cidr", "'10.0.0.0/8'"},
	{"macaddr", "'08:00:2b:01:02:03'"},
	{"money", "'12.34'"},
	{"oid", "42"},
	{"point", "'(1,2)'"},
	{"int4range", "'[1,5)'"},
	{"bit(4)", "B'1010'"},
	{"xml", "'<a>b</a>'"},
	{"tsvector", "'a fat cat'"},
	{"mood", "'happy'"},
}

func TestValues_SameAsDatabaseSQL(t *testing.T) {
	_, check, db, _ := open(t, 2)
	ctx := context.Background()
	mood := testdb.UniqueName("mood")
	testdb.Exec(t, check, "CREATE TYPE "+mood+" AS ENUM ('sad', 'happy')")
	t.Cleanup(func() { testdb.Exec(t, check, "DROP TYPE IF EXISTS "+mood) })

	ddl := "id BIGINT PRIMARY KEY"
	values := "1"
	for i, vt := range valueTypes {
		typ := vt.typ
		if typ == "mood" {
			typ = mood
		}
		ddl += fmt.Sprintf(", c%d %s", i, typ)
		values += ", " + vt.literal
	}
	table := testdb.CreateTable(t, check, "pgxrf_values", ddl)
	testdb.Exec(t, check, "INSERT INTO "+table+" VALUES ("+values+")")
	testdb.Exec(t, check, "INSERT INTO "+table+" (id) VALUES (2)") // every column NULL

	for _, id := range []int64{1, 2} {
		want, created, err := viaDatabaseSQL(ctx, check, table, id)
		if err != nil || created {
			t.Fatalf("database/sql: created=%v err=%v", created, err)
		}
		got, created, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"id": id}, nil, racefree.Options{})
		if err != nil || created {
			t.Fatalf("pgx: created=%v err=%v", created, err)
		}
		if len(got) != len(want) {
			t.Fatalf("row %d: %d columns, want %d", id, len(got), len(want))
		}
		for i, vt := range valueTypes {
			col := fmt.Sprintf("c%d", i)
			if !sameValue(got[col], want[col]) {
				t.Errorf("row %d, %s: pgx gave %T %#v, database/sql %T %#v", id, vt.typ, got[col], got[col], want[col], want[col])
			}
		}
	}
}

// viaDatabaseSQL reads the row id of table on check, a DB over
// database/sql, inside a transaction the test begins and hands to racefree
// (WrapTx): there database/sql itself reads and converts it. (On the pool,
// and in the transactions RunInTx begins, the PostgreSQL dialect reads
// natively with the same conversions as pgxrf, which this test would then
// compare with themselves.)
func viaDatabaseSQL(ctx context.Context, check *racefree.DB, table string, id int64) (row racefree.Values, created bool, err error) {
	stx, err := check.SQL().BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer stx.Rollback()
	row, created, err = racefree.GetOrCreate[racefree.Values](ctx, check.WrapTx(stx, nil), table, racefree.Values{"id": id}, nil, racefree.Options{})
	if err != nil {
		return row, created, err
	}
	return row, created, stx.Commit()
}

// sameValue is reflect.DeepEqual, with times compared as instants.
func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b)
}

// The binary fast paths of sqlValue agree with pgx's own decoding at the
// edges of each type.
func TestValues_IntegerEdges(t *testing.T) {
	_, check, db, _ := open(t, 2)
	ctx := context.Background()
	table := testdb.CreateTable(t, check, "pgxrf_edges", "id BIGINT PRIMARY KEY, s SMALLINT, i INTEGER, b BIGINT, f DOUBLE PRECISION, r REAL, ok BOOLEAN")
	testdb.Exec(t, check, "INSERT INTO "+table+" VALUES (1, -32768, -2147483648, -9223372036854775808, -1.5e300, -0.25, false), "+
		"(2, 32767, 2147483647, 9223372036854775807, 'NaN', 'Infinity', true)")
	for _, id := range []int64{1, 2} {
		want, _, err := viaDatabaseSQL(ctx, check, table, id)
		must(t, err)
		got, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, racefree.Values{"id": id}, nil, racefree.Options{})
		must(t, err)
		for col, w := range want {
			if g := got[col]; fmt.Sprintf("%T %v", g, g) != fmt.Sprintf("%T %v", w, w) {
				t.Errorf("row %d, %s: pgx gave %T %v, database/sql %T %v", id, col, g, g, w, w)
			}
		}
	}
}
