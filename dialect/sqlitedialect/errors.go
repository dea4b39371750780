package sqlitedialect

import (
	"errors"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/racefree/racefree/dialect"
)

// Classify sorts a modernc.org/sqlite error into a racefree class by its
// extended result code. SQLite names only the columns of a violated unique
// constraint, so Columns is filled from the message and Constraint stays empty.
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return classifySQLiteError(sqErr, err)
	}
	if e := dialect.ClassifyCommon(err); e != nil {
		return e
	}
	return &dialect.Error{Class: dialect.ClassOther, Err: err}
}

func classifySQLiteError(sqErr *sqlite.Error, err error) *dialect.Error {
	code := sqErr.Code()
	e := &dialect.Error{Code: strconv.Itoa(code), Err: err}
	switch {
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		e.Class = dialect.ClassUniqueViolation
		e.Columns = uniqueColumns(sqErr.Error())
	case code == sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		e.Class = dialect.ClassNotNullViolation
		e.Columns = uniqueColumns(sqErr.Error())
	case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		e.Class = dialect.ClassForeignKeyViolation
	case code == sqlite3.SQLITE_CONSTRAINT_CHECK:
		e.Class = dialect.ClassCheckViolation
		if cols := uniqueColumns(sqErr.Error()); len(cols) == 1 {
			e.Constraint = cols[0] // "CHECK constraint failed: name"
		}
	case code&0xff == sqlite3.SQLITE_CONSTRAINT:
		e.Class = dialect.ClassIntegrityViolation
	case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
		e.Class = dialect.ClassBusy
	case code&0xff == sqlite3.SQLITE_INTERRUPT:
		e.Class = dialect.ClassCanceled
	}
	return e
}

// uniqueColumns extracts "t.a", "t.b" from "… UNIQUE constraint failed: t.a, t.b (2067)",
// and likewise the column of a NOT NULL failure and the name of a CHECK.
func uniqueColumns(msg string) []string {
	const marker = "constraint failed: "
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return nil
	}
	rest := msg[i+len(marker):]
	if j := strings.LastIndex(rest, " ("); j >= 0 {
		rest = rest[:j]
	}
	var cols []string
	for _, c := range strings.Split(rest, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}
