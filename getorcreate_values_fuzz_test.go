package racefree_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// valuesTable is one engine's table for the value round trips: a unique
// lookup column and one column per kind of value.
type valuesTable struct {
	db    *racefree.DB
	name  string
	table string
}

// valueColumns spells the value columns per engine, each wide enough for a
// 64 KB value. They allow NULL, as most columns do, so that a value an
// engine turns into NULL (SQLite stores NaN as NULL) shows as a changed
// value, not as a constraint error.
var valueColumns = map[string]string{
	"postgres": "s TEXT, b BYTEA, i BIGINT, u BIGINT, f DOUBLE PRECISION",
	"mysql":    "s LONGTEXT, b LONGBLOB, i BIGINT, u BIGINT, f DOUBLE",
	"sqlite":   "s TEXT, b BLOB, i INTEGER, u INTEGER, f REAL",
}

func valuesTables(tb testing.TB) []valuesTable {
	var out []valuesTable
	for _, e := range testdb.Engines() {
		e.Require(tb)
		db := e.Open(tb)
		table := testdb.CreateTable(tb, db, "goc_fuzz", "id {{id}}, k {{text}} NOT NULL, "+valueColumns[e.Name]+", CONSTRAINT {{table}}_k UNIQUE (k)")
		out = append(out, valuesTable{db: db, name: e.Name, table: table})
	}
	return out
}

var fuzzKeys atomic.Int64

// FuzzGetOrCreate_Values: any string, byte string, integer and float goes
// into a new row through GetOrCreate and comes back exactly — from the
// call that created the row and from the call that finds it — on every
// engine, or the call fails with an error and creates nothing. Never a
// panic, never a value silently changed (a NUL byte dropped, invalid UTF-8
// replaced, NaN turned into NULL, a uint64 wrapped).
func FuzzGetOrCreate_Values(f *testing.F) {
	// One unusual value per seed, so that each one's fate is seen alone;
	// the fuzzer combines them.
	type seed struct {
		s string
		b []byte
		i int64
		u uint64
		f float64
	}
	base := seed{"plain", []byte("plain"), 1, 1, 1.5}
	seeds := []seed{base, {"", []byte{}, 0, 0, 0}}
	for _, v := range []func(*seed){
		func(x *seed) { x.s = "unicode: Ünïcödé 日本語 😀 e\u0301" },
		func(x *seed) { x.s = "nul\x00byte" },
		func(x *seed) { x.s = "invalid utf8 \xff\xfe" },
		func(x *seed) { x.s = strings.Repeat("x", 64<<10) },
		func(x *seed) { x.s = strings.Repeat("é", 32<<10) },
		func(x *seed) { x.s = "'; DROP TABLE users; --" },
		func(x *seed) { x.s = `\' \" \\ %s $1 ?` },
		func(x *seed) { x.b = nil },
		func(x *seed) { x.b = []byte{0, 0xff, '\''} },
		func(x *seed) { x.b = bytes.Repeat([]byte{0xab}, 64<<10) },
		func(x *seed) { x.i = math.MaxInt64 },
		func(x *seed) { x.i = math.MinInt64 },
		func(x *seed) { x.u = math.MaxInt64 },
		func(x *seed) { x.u = 1 << 63 },
		func(x *seed) { x.u = math.MaxUint64 },
		func(x *seed) { x.f = math.NaN() },
		func(x *seed) { x.f = math.Inf(1) },
		func(x *seed) { x.f = math.Inf(-1) },
		func(x *seed) { x.f = math.Copysign(0, -1) },
		func(x *seed) { x.f = math.MaxFloat64 },
		func(x *seed) { x.f = math.SmallestNonzeroFloat64 },
		func(x *seed) { x.f = 0.1 },
	} {
		x := base
		v(&x)
		seeds = append(seeds, x)
	}
	for _, x := range seeds {
		f.Add(x.s, x.b, x.i, x.u, x.f)
	}
	tables := valuesTables(f)
	f.Fuzz(func(t *testing.T, s string, b []byte, i int64, u uint64, fl float64) {
		for _, vt := range tables {
			checkValuesRoundTrip(t, vt, s, b, i, u, fl)
		}
	})
}

func checkValuesRoundTrip(t *testing.T, vt valuesTable, s string, b []byte, i int64, u uint64, fl float64) {
	ctx := context.Background()
	key := fmt.Sprintf("k%d", fuzzKeys.Add(1))
	lookup := racefree.Values{"k": key}
	defaults := racefree.Values{"s": s, "b": b, "i": i, "u": u, "f": fl}
	row, created, err := racefree.GetOrCreate[racefree.Values](ctx, vt.db, vt.table, lookup, defaults, racefree.Options{})
	if err != nil {
		if testing.Verbose() {
			t.Logf("%s refused %s / %s / %d / %d / %v: %s", vt.name, short(s), short(b), i, u, fl, short(err.Error()))
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("%s: an empty error", vt.name)
		}
		// A float the engine cannot store is refused before anything is
		// sent; where it can (PostgreSQL stores NaN and ±Inf), the call
		// may still fail on another value, such as a NUL byte in text.
		if fs, ok := vt.db.Dialect().(interface{ StoresFloat(float64) bool }); ok && !fs.StoresFloat(fl) && !errors.Is(err, racefree.ErrInvalidInput) {
			t.Fatalf("%s: %v refused by the server (%v), not before anything was sent with ErrInvalidInput", vt.name, fl, err)
		}
		if n := testdb.QueryInt(t, vt.db, "SELECT COUNT(*) FROM "+vt.table+" WHERE k = '"+key+"'"); n != 0 {
			t.Fatalf("%s: GetOrCreate failed (%v) and still created %d rows", vt.name, err, n)
		}
		return
	}
	if !created {
		t.Fatalf("%s: a new key was not created", vt.name)
	}
	if err := sameValues(row, s, b, i, u, fl); err != nil {
		t.Fatalf("%s: the created row: %v", vt.name, err)
	}
	again, created, err := racefree.GetOrCreate[racefree.Values](ctx, vt.db, vt.table, lookup, defaults, racefree.Options{})
	if err != nil || created {
		t.Fatalf("%s: the second call: created %v, %v", vt.name, created, err)
	}
	if err := sameValues(again, s, b, i, u, fl); err != nil {
		t.Fatalf("%s: the row read back: %v", vt.name, err)
	}
}

// sameValues compares a Values row with what was stored.
func sameValues(row racefree.Values, s string, b []byte, i int64, u uint64, fl float64) error {
	if got, ok := row["s"].(string); !ok || got != s {
		return fmt.Errorf("s = %s, stored %s", short(row["s"]), short(s))
	}
	// database/sql sends a nil []byte as NULL, and an empty one as an
	// empty value.
	if got, ok := row["b"].([]byte); b == nil && row["b"] != nil || b != nil && (!ok || !bytes.Equal(got, b)) {
		return fmt.Errorf("b = %s, stored %s", short(row["b"]), short(b))
	}
	if got, ok := row["i"].(int64); !ok || got != i {
		return fmt.Errorf("i = %#v, stored %d", row["i"], i)
	}
	if got, ok := row["u"].(int64); !ok || u > math.MaxInt64 || uint64(got) != u {
		return fmt.Errorf("u = %#v, stored %d", row["u"], u)
	}
	got, ok := row["f"].(float64)
	if !ok || !(got == fl || math.IsNaN(got) && math.IsNaN(fl)) {
		return fmt.Errorf("f = %#v, stored %v", row["f"], fl)
	}
	return nil
}

func short(v any) string {
	s := fmt.Sprintf("%T %q", v, v)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
