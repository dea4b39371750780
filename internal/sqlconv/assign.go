// Package sqlconv places driver values into scan destinations the way
// database/sql's Rows.Scan does, for a dialect that reads a row on the
// driver's connection itself (dialect.RowReader) and must hand back what
// database/sql would have.
//
// It follows database/sql's conversion rules step for step, but only as
// far as they succeed: where database/sql would fail, or would use a
// destination this package does not handle (sql.RawBytes), Assignable
// reports false and the caller leaves the whole row to database/sql, which
// then gives its own result or its own error. So a caller never sees a
// value or an error that database/sql would not give.
package sqlconv

import (
	"bytes"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Assignable reports whether Assign can place src into dest exactly as
// database/sql would, without an error other than one of dest's own Scan
// method. src is a driver value: nil, int64, float64, bool, []byte, string
// or time.Time.
func Assignable(dest, src any) bool {
	ok, _ := assign(dest, src, false)
	return ok
}

// Assign places src into dest as database/sql would. Call it only where
// Assignable reported true; an error is then that of dest's Scan method.
func Assign(dest, src any) error {
	ok, err := assign(dest, src, true)
	if !ok && err == nil {
		// Assignable said yes: unreachable unless they disagree.
		return fmt.Errorf("sqlconv: cannot store %T into %T", src, dest)
	}
	return err
}

// ScanError wraps err, the error of the destination of column i (named
// name), as database/sql's Rows.Scan does.
func ScanError(i int, name string, err error) error {
	return fmt.Errorf("sql: Scan error on column index %d, name %q: %w", i, name, err)
}

// assign is database/sql's convertAssignRows for the cases that succeed
// there (the same steps in the same order); ok is false for the others.
// With apply false it only decides.
func assign(dest, src any, apply bool) (ok bool, err error) {
	// The common cases, without reflection, in database/sql's order.
	switch s := src.(type) {
	case string:
		switch d := dest.(type) {
		case *string:
			return put(d, apply, func() string { return s })
		case *[]byte:
			return put(d, apply, func() []byte { return []byte(s) })
		}
	case []byte:
		switch d := dest.(type) {
		case *string:
			return put(d, apply, func() string { return string(s) })
		case *any:
			return put(d, apply, func() any { return bytes.Clone(s) })
		case *[]byte:
			return put(d, apply, func() []byte { return bytes.Clone(s) })
		}
	case time.Time:
		switch d := dest.(type) {
		case *time.Time:
			return put(d, apply, func() time.Time { return s })
		case *string:
			return put(d, apply, func() string { return s.Format(time.RFC3339Nano) })
		}
	case nil:
		switch d := dest.(type) {
		case *any:
			return put(d, apply, func() any { return nil })
		case *[]byte:
			return put(d, apply, func() []byte { return nil })
		}
	}

	switch d := dest.(type) {
	case *string:
		switch src.(type) {
		case int64, float64, bool:
			return put(d, apply, func() string { return asString(src) })
		}
		// NULL into a string: database/sql's error.
		return false, nil
	case *[]byte, *sql.RawBytes:
		// Numbers as bytes, and RawBytes, which a single-row read cannot
		// hand out: rare, left to database/sql.
		return false, nil
	case *bool:
		v, err := driver.Bool.ConvertValue(src)
		if err != nil {
			return false, nil
		}
		return put(d, apply, func() bool { return v.(bool) })
	case *any:
		return put(d, apply, func() any { return src })
	}

	if scanner, isScanner := dest.(sql.Scanner); isScanner {
		if reflect.ValueOf(dest).Kind() == reflect.Pointer && reflect.ValueOf(dest).IsNil() {
			return false, nil // its Scan may not expect a nil receiver
		}
		if apply {
			return true, scanner.Scan(src)
		}
		return true, nil
	}

	dpv := reflect.ValueOf(dest)
	if dpv.Kind() != reflect.Pointer || dpv.IsNil() {
		return false, nil
	}
	sv := reflect.ValueOf(src)
	dv := dpv.Elem()
	if sv.IsValid() && sv.Type().AssignableTo(dv.Type()) {
		if apply {
			if b, isBytes := src.([]byte); isBytes {
				dv.Set(reflect.ValueOf(bytes.Clone(b)))
			} else {
				dv.Set(sv)
			}
		}
		return true, nil
	}
	if sv.IsValid() && dv.Kind() == sv.Kind() && sv.Type().ConvertibleTo(dv.Type()) {
		if apply {
			dv.Set(sv.Convert(dv.Type()))
		}
		return true, nil
	}

	// database/sql converts the rest through a string.
	switch dv.Kind() {
	case reflect.Pointer:
		if src == nil {
			if apply {
				dv.SetZero()
			}
			return true, nil
		}
		if !apply {
			return assign(reflect.New(dv.Type().Elem()).Interface(), src, false)
		}
		p := reflect.New(dv.Type().Elem())
		ok, err := assign(p.Interface(), src, true)
		if ok {
			// database/sql sets the pointer before it converts into it,
			// so the pointer is set even when a Scan method fails.
			dv.Set(p)
		}
		return ok, err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if src == nil {
			return false, nil
		}
		i, err := strconv.ParseInt(asString(src), 10, dv.Type().Bits())
		if err != nil {
			return false, nil
		}
		if apply {
			dv.SetInt(i)
		}
		return true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if src == nil {
			return false, nil
		}
		u, err := strconv.ParseUint(asString(src), 10, dv.Type().Bits())
		if err != nil {
			return false, nil
		}
		if apply {
			dv.SetUint(u)
		}
		return true, nil
	case reflect.Float32, reflect.Float64:
		if src == nil {
			return false, nil
		}
		f, err := strconv.ParseFloat(asString(src), dv.Type().Bits())
		if err != nil {
			return false, nil
		}
		if apply {
			dv.SetFloat(f)
		}
		return true, nil
	case reflect.String:
		switch v := src.(type) {
		case string:
			if apply {
				dv.SetString(v)
			}
			return true, nil
		case []byte:
			if apply {
				dv.SetString(string(v))
			}
			return true, nil
		}
	}
	return false, nil
}

// put is one of the common cases: d takes v() when applying; a nil d is
// left to database/sql (its error).
func put[T any](d *T, apply bool, v func() T) (ok bool, err error) {
	if d == nil {
		return false, nil
	}
	if apply {
		*d = v()
	}
	return true, nil
}

// asString is database/sql's text for a driver value.
func asString(src any) string {
	switch v := src.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprintf("%v", src)
}
