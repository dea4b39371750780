package racefree

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Values is a set of column → value pairs: the lookup, the defaults or the
// new values of an operation, or a whole row when used as the result type
// T. Values are always sent as bound parameters; column names are checked
// against the table's catalog and quoted by the dialect.
//
// As a result, a Values row holds every column of the table with the
// driver's value for it, text as string (MySQL's []byte included) and
// binary columns as []byte.
type Values map[string]any

// codec maps the columns an operation reads onto T.
type codec struct {
	cols   []string // columns read, in SELECT order
	quoted []string // cols quoted by the dialect
	fields [][]int  // struct field index per column; nil for Values
	isMap  bool
	binary []bool // per column, for Values results: keep []byte
}

var valuesType = reflect.TypeFor[Values]()
var mapType = reflect.TypeFor[map[string]any]()

// structFields caches the db-tagged fields of each struct type T seen.
var structFields sync.Map // reflect.Type → *structInfo

type structInfo struct {
	cols      []string
	index     [][]int
	omitEmpty []bool // the tag says ",omitempty": ValuesOf leaves the field out when it is zero
	err       error
}

// fieldsOf returns the db-tagged fields of the struct type rt, embedded
// structs included. A field without a tag is skipped: racefree never
// guesses a column name.
func fieldsOf(rt reflect.Type) *structInfo {
	if v, ok := structFields.Load(rt); ok {
		return v.(*structInfo)
	}
	info := &structInfo{}
	seen := map[string]bool{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), prefix...), i)
			tag, hasTag := f.Tag.Lookup("db")
			tag, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && !hasTag && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !hasTag || tag == "-" || !f.IsExported() {
				continue
			}
			if tag == "" {
				info.err = fmt.Errorf("field %s has an empty db tag", f.Name)
				return
			}
			if seen[tag] {
				info.err = fmt.Errorf("column %q is tagged on two fields", tag)
				return
			}
			seen[tag] = true
			info.cols = append(info.cols, tag)
			info.index = append(info.index, idx)
			info.omitEmpty = append(info.omitEmpty, slices.Contains(strings.Split(opts, ","), "omitempty"))
		}
	}
	walk(rt, nil)
	if info.err == nil && len(info.cols) == 0 {
		info.err = fmt.Errorf("struct %v has no field with a db:\"column\" tag", rt)
	}
	v, _ := structFields.LoadOrStore(rt, info)
	return v.(*structInfo)
}

type codecKey struct {
	t  *tableInfo
	rt reflect.Type
}

// codecFor returns the codec of result type T against table t. DB.codecs
// keeps one per (catalog entry, result type) for as long as the entry is
// cached (see DB.ForgetSchema).
func codecFor[T any](verb string, db *DB, t *tableInfo) (*codec, error) {
	rt := reflect.TypeFor[T]()
	if c, ok := db.codecs.Load(codecKey{t, rt}); ok {
		return c.(*codec), nil
	}
	c, err := buildCodec(verb, t, rt)
	if err != nil {
		return nil, err
	}
	db.codecs.Store(codecKey{t, rt}, c)
	return c, nil
}

func buildCodec(verb string, t *tableInfo, rt reflect.Type) (*codec, error) {
	c, err := newCodec(verb, t.Table, rt)
	if err != nil {
		return nil, err
	}
	// A name the dialect cannot quote is an error that names it, never an
	// empty identifier. (Every name the three engines' catalogs can hold
	// is quotable.)
	c.quoted = make([]string, len(c.cols))
	for i, col := range c.cols {
		q, ok := t.cols[col]
		if !ok {
			return nil, inputError(verb, "table %s: column %q cannot be quoted, so it cannot be read", t.Name, col)
		}
		c.quoted[i] = q
	}
	return c, nil
}

func newCodec(verb string, t *dialect.Table, rt reflect.Type) (*codec, error) {
	if rt == valuesType || rt == mapType {
		c := &codec{isMap: true}
		for _, col := range t.Columns {
			c.cols = append(c.cols, col.Name)
			c.binary = append(c.binary, typeFamily(col.Type) == famBlob)
		}
		return c, nil
	}
	if rt.Kind() != reflect.Struct {
		return nil, inputError(verb, "result type %v is neither a struct with db tags nor racefree.Values", rt)
	}
	info := fieldsOf(rt)
	if info.err != nil {
		return nil, inputError(verb, "%v", info.err)
	}
	for _, col := range info.cols {
		if _, ok := t.Column(col); !ok {
			return nil, inputError(verb, "result type %v: table %s has no column %q", rt, t.Name, col)
		}
	}
	return &codec{cols: info.cols, fields: info.index}, nil
}

type scanner interface{ Scan(dest ...any) error }

// scan reads one row into a new T.
func scanInto[T any](c *codec, s scanner) (T, error) {
	var out T
	if c.isMap {
		raw := make([]any, len(c.cols))
		dest := make([]any, len(c.cols))
		for i := range raw {
			dest[i] = &raw[i]
		}
		if err := s.Scan(dest...); err != nil {
			return out, err
		}
		m := make(Values, len(c.cols))
		for i, col := range c.cols {
			if b, ok := raw[i].([]byte); ok {
				if c.binary[i] {
					raw[i] = append([]byte(nil), b...)
				} else {
					raw[i] = string(b)
				}
			}
			m[col] = raw[i]
		}
		reflect.ValueOf(&out).Elem().Set(reflect.ValueOf(m).Convert(reflect.TypeFor[T]()))
		return out, nil
	}
	rv := reflect.ValueOf(&out).Elem()
	dest := make([]any, len(c.cols))
	for i, idx := range c.fields {
		dest[i] = rv.FieldByIndex(idx).Addr().Interface()
	}
	err := s.Scan(dest...)
	return out, err
}

// Column type families, for catching a value of the wrong type before
// anything is sent.
const (
	famAny = iota
	famInt
	famFloat
	famBool
	famText
	famTime
	famBlob
	famUnknown = -1 // not looked up yet
)

// Flags added to a column's family for the value checks (see valueFam)
// when its engine cannot store some floats as they are
// (dialect.FloatLimiter).
const (
	famMask  = 0xff   // the family itself
	famNoNaN = 1 << 8 // NaN would be altered or refused
	famNoInf = 1 << 9 // ±Inf would be altered or refused
)

// floatFlags are the flags of the floats engine d cannot store as they
// are: a value the engine would alter (SQLite's NaN, stored as NULL) or
// refuse (MySQL's NaN and ±Inf) is refused before anything is sent.
func floatFlags(d dialect.Dialect) int {
	fl, ok := d.(dialect.FloatLimiter)
	if !ok {
		return 0
	}
	flags := 0
	if !fl.StoresFloat(math.NaN()) {
		flags |= famNoNaN
	}
	if !fl.StoresFloat(math.Inf(1)) || !fl.StoresFloat(math.Inf(-1)) {
		flags |= famNoInf
	}
	return flags
}

// valueFam is the family of column col for checking a value bound to it
// (normalizeValue): its type family with the engine's float flags. Only
// the value checks read the flags; everything else compares fams itself.
func (t *tableInfo) valueFam(col string) int { return t.fams[col] | t.floats }

func typeFamily(t string) int {
	t = strings.ToLower(t)
	switch {
	case t == "tinyint(1)", strings.HasPrefix(t, "bool"):
		return famBool
	case strings.Contains(t, "int") && !strings.Contains(t, "interval") && !strings.Contains(t, "point"):
		return famInt
	case strings.Contains(t, "char"), strings.Contains(t, "text"), strings.Contains(t, "clob"):
		return famText
	case strings.Contains(t, "real"), strings.Contains(t, "double"), strings.Contains(t, "float"),
		strings.Contains(t, "numeric"), strings.Contains(t, "decimal"):
		return famFloat
	case strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "date"), strings.HasPrefix(t, "time"):
		return famTime
	case strings.Contains(t, "blob"), t == "bytea", strings.Contains(t, "binary"):
		return famBlob
	}
	return famAny
}

// normalize turns v into the driver value racefree binds and checks it
// against col's type family. It calls a driver.Valuer once, so that a
// lookup value is the same in every statement of the operation.
func normalize(verb string, col dialect.Column, v any) (any, error) {
	return normalizeFam(verb, col, famUnknown, v)
}

// normalizeFam is normalize with col's type family known (a plan keeps
// it), or famUnknown.
func normalizeFam(verb string, col dialect.Column, fam int, v any) (any, error) {
	dv, err := normalizeValue(col, fam, v)
	if err != nil {
		return nil, inputError(verb, "%v", err)
	}
	return dv, nil
}

// normalizeValue is normalizeFam whose error only says what is wrong with
// the value, for messages that name every bad value at once.
func normalizeValue(col dialect.Column, fam int, v any) (any, error) {
	// The common types first, without reflection: this runs for every
	// value of every call.
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string, int64, bool, float64, time.Time:
		return checkFamily(col, fam, v, v) // already a driver value: no re-boxing
	case int:
		return checkFamily(col, fam, v, int64(x))
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, nil
	}
	var dv driver.Value
	var err error
	if valuer, ok := v.(driver.Valuer); ok {
		dv, err = valuer.Value()
		if err == nil && dv != nil && !driver.IsValue(dv) {
			err = fmt.Errorf("Value() returned %T", dv)
		}
	} else {
		dv, err = driver.DefaultParameterConverter.ConvertValue(v)
	}
	if err != nil {
		return nil, fmt.Errorf("column %q: unsupported value of type %T: %v", col.Name, v, err)
	}
	if dv == nil {
		return nil, nil
	}
	return checkFamily(col, fam, v, dv)
}

// checkFamily refuses a driver value that col's type cannot take, or that
// its engine would not store as it is.
func checkFamily(col dialect.Column, fam int, v any, dv driver.Value) (any, error) {
	ok := true
	if fam == famUnknown {
		fam = typeFamily(col.Type)
	}
	flags := fam &^ famMask
	fam &= famMask
	if x, isFloat := dv.(float64); isFloat && flags != 0 {
		if math.IsNaN(x) && flags&famNoNaN != 0 || math.IsInf(x, 0) && flags&famNoInf != 0 {
			return nil, fmt.Errorf("column %q: the engine cannot store %v as it is (it would be altered or refused)", col.Name, x)
		}
	}
	switch x := dv.(type) {
	case int64:
		ok = fam != famText && fam != famTime && fam != famBlob
	case float64:
		ok = fam == famFloat || fam == famAny || fam == famInt && x == math.Trunc(x)
	case bool:
		ok = fam == famBool || fam == famInt || fam == famAny
	case string:
		switch fam {
		case famInt:
			_, perr := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			ok = perr == nil
		case famFloat:
			_, perr := strconv.ParseFloat(strings.TrimSpace(x), 64)
			ok = perr == nil
		case famBool:
			ok = false
		}
	case []byte:
		ok = fam == famText || fam == famBlob || fam == famAny
	case time.Time:
		ok = fam == famTime || fam == famAny
	}
	if !ok {
		return nil, fmt.Errorf("column %q of type %s cannot take a value of type %T (%v)", col.Name, col.Type, v, v)
	}
	return dv, nil
}

// ValuesOf returns the db-tagged fields of the struct v (or of the struct
// a non-nil pointer v points to) as Values, for a lookup, defaults or
// values written as a struct rather than as column names:
//
//	type UserKey struct {
//		Email string `db:"email"`
//	}
//	lookup, err := racefree.ValuesOf(UserKey{Email: email})
//
// Every tagged exported field is included, zero or not, except a field
// whose tag says omitempty (`db:"name,omitempty"`) and is zero. Embedded
// structs without a tag contribute their fields. The values are the
// fields' own (a driver.Valuer stays one), checked against the table's
// columns when the Values are used. An error matching ErrInvalidInput
// says why v cannot be read (not a struct, no db tags, a column tagged
// twice).
func ValuesOf(v any) (Values, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, inputError("values of", "%T is not a struct (or a pointer to one) with db tags", v)
	}
	info := fieldsOf(rv.Type())
	if info.err != nil {
		return nil, inputError("values of", "%v", info.err)
	}
	out := make(Values, len(info.cols))
	for i, col := range info.cols {
		f, err := rv.FieldByIndexErr(info.index[i])
		if err != nil { // through a nil embedded pointer
			continue
		}
		if info.omitEmpty[i] && f.IsZero() {
			continue
		}
		out[col] = f.Interface()
	}
	return out, nil
}
