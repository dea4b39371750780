package racefree_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// TestValuesResult_SameOnEveryExecutor: a Values row holds the same types
// whether the pool or a transaction read it — on MySQL the pool's hit goes
// through a prepared statement (the driver's binary protocol) and the
// transaction's through an interpolated query (its text protocol): integers
// as int64, doubles as float64, text as string.
func TestValuesResult_SameOnEveryExecutor(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ctx := context.Background()
		db := e.Open(t)
		table := testdb.CreateTable(t, db, "goc_vals", `id {{id}}, k {{text}} NOT NULL, n INTEGER, f DOUBLE PRECISION, s {{text}},
			CONSTRAINT {{table}}_k UNIQUE (k)`)
		lookup, defaults := racefree.Values{"k": "a"}, racefree.Values{"n": 7, "f": 1.5, "s": "x"}
		fromPool, _, err := racefree.GetOrCreate[racefree.Values](ctx, db, table, lookup, defaults, racefree.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var fromTx racefree.Values
		err = racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
			fromTx, _, err = racefree.GetOrCreate[racefree.Values](ctx, tx, table, lookup, defaults, racefree.Options{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromPool, fromTx) {
			t.Fatalf("pool read %#v, transaction read %#v", fromPool, fromTx)
		}
		for col, want := range map[string]any{"n": int64(7), "f": 1.5, "s": "x", "k": "a"} {
			if got := fromPool[col]; got != want {
				t.Errorf("%s = %#v (%T), want %#v (%T)", col, got, got, want, want)
			}
		}
	})
}

func TestValuesOf(t *testing.T) {
	type Embedded struct {
		Org int64 `db:"org"`
	}
	type row struct {
		Embedded
		ID      int64   `db:"id,omitempty"`
		Email   string  `db:"email"`
		Nick    *string `db:"nick"`
		skipped string  `db:"skipped"`
		Ignored string  `db:"-"`
		NoTag   string
	}
	got, err := racefree.ValuesOf(&row{Embedded: Embedded{Org: 7}, Email: "a@x", skipped: "s", Ignored: "i", NoTag: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["org"] != int64(7) || got["email"] != "a@x" || got["nick"] != (*string)(nil) {
		t.Fatalf("ValuesOf = %#v", got)
	}
	if got, _ := racefree.ValuesOf(row{ID: 3}); got["id"] != int64(3) {
		t.Fatalf("a non-zero omitempty field is kept: %#v", got)
	}
	for _, bad := range []any{nil, 3, "x", &struct{ A int }{}, struct {
		A int `db:"a"`
		B int `db:"a"`
	}{}} {
		if _, err := racefree.ValuesOf(bad); !errors.Is(err, racefree.ErrInvalidInput) {
			t.Errorf("ValuesOf(%T) = %v, want ErrInvalidInput", bad, err)
		}
	}
}
