package racefree

import (
	"bytes"
	"cmp"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Limits of a decimal amount or floor: what DECIMAL(65,30), MySQL's
// widest exact type, holds.
const (
	maxDecimalIntDigits  = 35
	maxDecimalFracDigits = 30
)

// transferPlan checks a transfer against the table's catalog (read once
// per DB) and returns it as a dialect takes it, or an error matching
// ErrInvalidInput that names every problem found.
func (db *DB) transferPlan(ctx context.Context, h handle, b transferTarget, from, to, amount, floor any) (dialect.Transfer, error) {
	const verb = "transfer"
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if b.Key == "" {
		b.Key = "id"
	}
	if floor == nil {
		floor = int64(0)
	}
	amt, amtScale, err := transferNumber(amount, false)
	if err != nil {
		bad("amount %v: %v", amount, err)
	}
	fl, flScale, err := transferNumber(floor, true)
	if err != nil {
		bad("floor %v: %v", floor, err)
	}
	t := dialect.Transfer{Amount: amt, Floor: fl}
	_, amtDecimal := amt.(string)
	_, flDecimal := fl.(string)
	t.Decimal = amtDecimal || flDecimal

	ti, err := db.table(ctx, h.q, verb, b.Table)
	var ie *invalidInputError
	switch {
	case errors.As(err, &ie):
		bad("%s", ie.msg)
	case err != nil:
		return t, err
	}
	var keyCol dialect.Column
	keyFam := famUnknown
	if ti != nil {
		t.Table = ti.quoted
		var ok bool
		if keyCol, ok = transferColumn(db.d, ti, b.Key, "key", bad); ok {
			t.Key = ti.ident(b.Key)
			keyFam = ti.fams[b.Key]
			if !uniqueOn(ti.Table, b.Key) {
				bad("no unique index of %s covers exactly column %q, so a key could name many rows", b.Table, b.Key)
			}
		}
		if col, ok := transferColumn(db.d, ti, b.Column, "value", bad); ok {
			t.Value = ti.ident(b.Column)
			fam := ti.fams[b.Column]
			scale := columnScale(col.Type, fam)
			switch {
			case col.Nullable:
				bad("column %q accepts NULL, and NULL plus an amount is NULL: declare it NOT NULL", b.Column)
			case fam != famInt && fam != famFloat && fam != famAny:
				bad("column %q is %s, not a number", b.Column, col.Type)
			case scale == 0 && (amtScale > 0 || flScale > 0):
				bad("column %q of type %s holds whole numbers: amount %v, floor %v", b.Column, col.Type, amt, fl)
			case scale > 0 && amtScale > scale:
				bad("amount %v has %d decimal places, column %q of type %s keeps %d: it would be rounded", amt, amtScale, b.Column, col.Type, scale)
			case scale > 0 && flScale > scale:
				bad("floor %v has %d decimal places, column %q of type %s keeps %d", fl, flScale, b.Column, col.Type, scale)
			}
		}
	} else {
		// The table is unusable; still say what is wrong with the columns.
		for _, c := range []string{b.Key, b.Column} {
			if _, err := db.d.QuoteIdent(c); err != nil {
				bad("%s", strings.TrimPrefix(err.Error(), "racefree: "))
			}
		}
	}
	key := func(name string, v any) any {
		if v == nil {
			bad("nil %s key", name)
			return nil
		}
		if t.Key == "" {
			return v
		}
		dv, err := normalizeValue(keyCol, keyFam, v)
		if err != nil {
			bad("%s key: %v", name, err)
			return nil
		}
		return dv
	}
	t.From, t.To = key("from", from), key("to", to)
	if t.From != nil && t.To != nil {
		c := compareKeys(t.From, t.To)
		if c == 0 {
			bad("from and to are the same key %v", t.From)
		}
		t.FromFirst = c < 0
	}
	if len(problems) > 0 {
		return t, inputError(verb, "%s", strings.Join(problems, "; "))
	}
	return t, nil
}

// transferColumn looks up a column the transfer names, reporting through
// bad why it cannot be used.
func transferColumn(d dialect.Dialect, ti *tableInfo, name, role string, bad func(string, ...any)) (dialect.Column, bool) {
	if name == "" {
		bad("no %s column named", role)
		return dialect.Column{}, false
	}
	if _, err := d.QuoteIdent(name); err != nil {
		bad("%s column: %s", role, strings.TrimPrefix(err.Error(), "racefree: "))
		return dialect.Column{}, false
	}
	col, ok := ti.Column(name)
	if !ok || ti.ident(name) == "" {
		bad("table %s has no column %q", ti.Name, name)
		return dialect.Column{}, false
	}
	return col, true
}

// uniqueOn reports whether a unique index of t covers exactly col.
func uniqueOn(t *dialect.Table, col string) bool {
	for _, u := range t.Unique {
		if len(u.Columns) == 1 && u.Columns[0] == col {
			return true
		}
	}
	return false
}

// scaleRE finds the scale of a declared DECIMAL(p,s) or NUMERIC(p,s).
var scaleRE = regexp.MustCompile(`^(?:numeric|decimal|number)\s*\(\s*\d+\s*(?:,\s*(\d+)\s*)?\)`)

// columnScale is how many decimal places a column keeps: 0 for integers,
// s for DECIMAL(p,s) (and 0 for DECIMAL(p)), -1 when any number of places
// is kept (unconstrained NUMERIC, floating point, untyped SQLite).
func columnScale(typ string, fam int) int {
	if fam == famInt {
		return 0
	}
	m := scaleRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(typ)))
	switch {
	case m == nil:
		return -1
	case m[1] == "":
		return 0
	}
	s, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return s
}

// decimalRE is a decimal as Transfer takes it: digits, a point and digits.
var decimalRE = regexp.MustCompile(`^(-?)([0-9]+)(?:\.([0-9]+))?$`)

// transferNumber turns an amount (signed false: greater than zero) or a
// floor (signed: any value) into what is bound — an int64, or a decimal
// string in canonical form when it has a fraction or does not fit an
// int64 — and its number of decimal places.
func transferNumber(v any, signed bool) (any, int, error) {
	switch x := v.(type) {
	case int:
		return transferInt(int64(x), signed)
	case int64:
		return transferInt(x, signed)
	case string:
		return transferDecimal(x, signed)
	case float32, float64:
		return nil, 0, fmt.Errorf("a %T is not exact (0.1 has no binary fraction): pass an integer in minor units or a decimal string", v)
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return nil, 0, fmt.Errorf("Value(): %w", err)
		}
		switch y := dv.(type) {
		case int64:
			return transferInt(y, signed)
		case string:
			return transferDecimal(y, signed)
		case []byte:
			return transferDecimal(string(y), signed)
		case nil:
			return nil, 0, errors.New("Value() returned NULL")
		}
		return nil, 0, fmt.Errorf("Value() returned %T, want an integer or a decimal string", dv)
	case nil:
		return nil, 0, errors.New("nil")
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return transferInt(rv.Int(), signed)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return transferInt(int64(u), signed)
		}
		return transferDecimal(strconv.FormatUint(rv.Uint(), 10), signed)
	case reflect.String:
		return transferDecimal(rv.String(), signed)
	case reflect.Float32, reflect.Float64:
		return nil, 0, fmt.Errorf("a %T is not exact: pass an integer in minor units or a decimal string", v)
	}
	return nil, 0, fmt.Errorf("unsupported type %T: want an integer or a decimal string", v)
}

func transferInt(n int64, signed bool) (any, int, error) {
	if !signed && n <= 0 {
		return nil, 0, errors.New("must be greater than zero")
	}
	return n, 0, nil
}

func transferDecimal(s string, signed bool) (any, int, error) {
	m := decimalRE.FindStringSubmatch(s)
	if m == nil {
		return nil, 0, errors.New(`not a decimal number (digits, optionally a point and digits: "12.50")`)
	}
	sign, whole, frac := m[1], strings.TrimLeft(m[2], "0"), strings.TrimRight(m[3], "0")
	if whole == "" {
		whole = "0"
	}
	switch {
	case len(whole) > maxDecimalIntDigits:
		return nil, 0, fmt.Errorf("more than %d digits before the point", maxDecimalIntDigits)
	case len(frac) > maxDecimalFracDigits:
		return nil, 0, fmt.Errorf("more than %d decimal places", maxDecimalFracDigits)
	}
	zero := whole == "0" && frac == ""
	if zero {
		sign = ""
	}
	if !signed && (sign == "-" || zero) {
		return nil, 0, errors.New("must be greater than zero")
	}
	if frac == "" {
		if n, err := strconv.ParseInt(sign+whole, 10, 64); err == nil {
			return n, 0, nil
		}
		return sign + whole, 0, nil
	}
	return sign + whole + "." + frac, len(frac), nil
}

// compareKeys orders two driver values of one key column: the order a
// transfer locks its rows in where the statement decides it. Any total
// order works as long as every transfer uses the same one.
func compareKeys(a, b any) int {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case time.Time:
		return x.Compare(b.(time.Time))
	case bool:
		switch y := b.(bool); {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func keyRank(v any) int {
	switch v.(type) {
	case bool:
		return 0
	case int64:
		return 1
	case float64:
		return 2
	case string:
		return 3
	case []byte:
		return 4
	case time.Time:
		return 5
	}
	return 6
}
