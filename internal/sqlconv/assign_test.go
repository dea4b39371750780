package sqlconv

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every driver value into every kind of destination: wherever Assignable
// says yes, Assign gives what database/sql's Row.Scan gives, read through a
// driver that returns that one value.
func TestAssign_SameAsDatabaseSQL(t *testing.T) {
	when := time.Date(2026, 12, 2, 3, 4, 5, 6000, time.FixedZone("x", 7200))
	sources := []any{
		nil, int64(0), int64(1), int64(-7), int64(300), int64(math.MaxInt64), int64(math.MinInt64),
		1.5, -0.25, 1e300, math.Inf(1), float64(16777217), 0.1,
		true, false,
		"", "héllo", "42", "-42", "1.25", "true", "0", "2026-12-02",
		[]byte(nil), []byte{}, []byte("bytes"), []byte("17"), []byte{0, 255},
		when,
	}
	type myInt int
	type myInt64 int64
	type myString string
	type myBytes []byte
	dests := []reflect.Type{
		reflect.TypeFor[string](), reflect.TypeFor[[]byte](), reflect.TypeFor[bool](), reflect.TypeFor[any](),
		reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](), reflect.TypeFor[int32](), reflect.TypeFor[int64](),
		reflect.TypeFor[uint](), reflect.TypeFor[uint8](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](),
		reflect.TypeFor[float32](), reflect.TypeFor[float64](), reflect.TypeFor[time.Time](),
		reflect.TypeFor[myInt](), reflect.TypeFor[myInt64](), reflect.TypeFor[myString](), reflect.TypeFor[myBytes](),
		reflect.TypeFor[json.RawMessage](),
		reflect.TypeFor[*string](), reflect.TypeFor[*int64](), reflect.TypeFor[*int](), reflect.TypeFor[*time.Time](),
		reflect.TypeFor[**string](), reflect.TypeFor[*myString](),
		reflect.TypeFor[sql.NullString](), reflect.TypeFor[sql.NullInt64](), reflect.TypeFor[sql.NullInt32](),
		reflect.TypeFor[sql.NullFloat64](), reflect.TypeFor[sql.NullBool](), reflect.TypeFor[sql.NullTime](),
		reflect.TypeFor[sql.Null[string]](), reflect.TypeFor[sql.Null[int]](), reflect.TypeFor[*sql.NullString](),
		reflect.TypeFor[sql.RawBytes](), reflect.TypeFor[struct{ A int }](), reflect.TypeFor[fmt.Stringer](),
	}
	assignable := 0
	for _, src := range sources {
		for _, typ := range dests {
			name := fmt.Sprintf("%T(%v)→%v", src, src, typ)
			got := reflect.New(typ)
			ok := Assignable(got.Interface(), src)
			if !ok {
				continue
			}
			assignable++
			err := Assign(got.Interface(), src)
			want := reflect.New(typ)
			wantErr := scanWithDatabaseSQL(t, src, want.Interface())
			if (err != nil) != (wantErr != nil) {
				t.Errorf("%s: Assign error %v, database/sql %v", name, err, wantErr)
				continue
			}
			if err != nil {
				if !strings.Contains(wantErr.Error(), err.Error()) {
					t.Errorf("%s: Assign error %q, database/sql %q", name, err, wantErr)
				}
				continue
			}
			if !reflect.DeepEqual(got.Elem().Interface(), want.Elem().Interface()) {
				t.Errorf("%s: Assign gave %#v, database/sql %#v", name, got.Elem().Interface(), want.Elem().Interface())
			}
		}
	}
	// The cases a row of a real table mostly has must be taken, or the
	// native read would never run.
	for _, c := range []struct {
		dest any
		src  any
	}{
		{new(int64), int64(1)}, {new(int), int64(1)}, {new(uint), int64(1)}, {new(string), "s"},
		{new(float64), 1.5}, {new(float64), "1.25"}, {new(bool), true}, {new(time.Time), when},
		{new(any), nil}, {new(any), "s"}, {new([]byte), []byte("b")}, {new(*string), nil},
		{new(*string), "s"}, {new(sql.NullString), nil}, {new(sql.NullInt64), int64(3)},
		{new(myString), "s"}, {new(json.RawMessage), []byte("{}")},
	} {
		if !Assignable(c.dest, c.src) {
			t.Errorf("Assignable(%T, %T(%v)) = false, want true", c.dest, c.src, c.src)
		}
	}
	t.Logf("%d of %d pairs assignable", assignable, len(sources)*len(dests))
}

// The pairs database/sql refuses are never assignable, so that its error,
// not a different one, reaches the caller.
func TestAssignable_RefusesWhatDatabaseSQLRefuses(t *testing.T) {
	for _, c := range []struct {
		dest any
		src  any
	}{
		{new(int64), nil}, {new(string), nil}, {new(int8), int64(300)}, {new(uint), int64(-1)},
		{new(int), "x"}, {new(bool), "maybe"}, {new(time.Time), "2026-12-02"}, {new(sql.RawBytes), []byte("b")},
		{new(struct{ A int }), int64(1)}, {(*string)(nil), "s"}, {"not a pointer", "s"},
	} {
		if Assignable(c.dest, c.src) {
			t.Errorf("Assignable(%T, %T(%v)) = true, want false", c.dest, c.src, c.src)
		}
		if wantErr := scanWithDatabaseSQL(t, c.src, c.dest); wantErr == nil {
			t.Errorf("database/sql accepted %T(%v) into %T: the case is wrong", c.src, c.src, c.dest)
		}
	}
}

// A Scan method's error reaches the caller, wrapped as database/sql wraps it.
func TestAssign_ScannerError(t *testing.T) {
	var d failingScanner
	if !Assignable(&d, int64(1)) {
		t.Fatal("a Scanner is always assignable")
	}
	err := Assign(&d, int64(1))
	if !errors.Is(err, errScan) {
		t.Fatalf("Assign: %v, want %v", err, errScan)
	}
	want := scanWithDatabaseSQL(t, int64(1), &d)
	if got := ScanError(0, "c", err); got.Error() != want.Error() {
		t.Errorf("ScanError: %q, database/sql %q", got, want)
	}
}

var errScan = errors.New("scan refused")

type failingScanner struct{}

func (*failingScanner) Scan(any) error { return errScan }

// scanWithDatabaseSQL reads src through database/sql into dest.
func scanWithDatabaseSQL(t *testing.T, src, dest any) error {
	t.Helper()
	db := sql.OpenDB(oneValue{src})
	defer db.Close()
	return db.QueryRowContext(context.Background(), "SELECT c").Scan(dest)
}

// oneValue is a database/sql driver whose every query returns one row of
// one column, c, holding the value.
type oneValue struct{ v any }

func (o oneValue) Connect(context.Context) (driver.Conn, error) { return o, nil }
func (o oneValue) Driver() driver.Driver                        { return nil }
func (o oneValue) Prepare(string) (driver.Stmt, error)          { return o, nil }
func (o oneValue) Close() error                                 { return nil }
func (o oneValue) Begin() (driver.Tx, error)                    { return nil, errors.New("no transactions") }
func (o oneValue) NumInput() int                                { return -1 }
func (o oneValue) Exec([]driver.Value) (driver.Result, error)   { return nil, errors.New("no exec") }
func (o oneValue) Query([]driver.Value) (driver.Rows, error)    { return &oneRow{v: o.v}, nil }

type oneRow struct {
	v    any
	done bool
}

func (r *oneRow) Columns() []string { return []string{"c"} }
func (r *oneRow) Close() error      { return nil }
func (r *oneRow) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.v
	return nil
}

// Replay gives database/sql's result and database/sql's error, for every
// pair, including those Assignable turns down.
func TestReplay_SameAsDatabaseSQL(t *testing.T) {
	cases := []struct {
		dest func() any
		src  any
	}{
		{func() any { return new([]byte) }, int64(42)},   // formatted as text
		{func() any { return new(int64) }, nil},          // NULL into an int
		{func() any { return new(int8) }, int64(300)},    // overflow
		{func() any { return new(float32) }, 0.1},        // through text
		{func() any { return new(string) }, int64(7)},    // number as text
		{func() any { return new(bool) }, "maybe"},       // refused
		{func() any { return new(time.Time) }, "2026"},   // refused
		{func() any { return new(*int) }, []byte("12")},  // pointer, through text
		{func() any { return new(sql.RawBytes) }, "raw"}, // refused on a single row
	}
	for _, c := range cases {
		got, want := c.dest(), c.dest()
		err := Replay([]string{"c"}, []any{c.src}, []any{got})
		wantErr := scanWithDatabaseSQL(t, c.src, want)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("%T(%v) into %T: Replay error %v, database/sql %v", c.src, c.src, got, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T(%v) into %T: Replay gave %#v, database/sql %#v", c.src, c.src, got, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
		}
	}
	// Several columns, and a Scan error names the right one.
	var a int64
	var b string
	err := Replay([]string{"a", "b"}, []any{int64(1), nil}, []any{&a, &b})
	if err == nil || !strings.Contains(err.Error(), `column index 1, name "b"`) {
		t.Errorf("err = %v, want one naming column b", err)
	}
}
