// Package thirdpartydialect is a dialect of racefree written outside
// racefree's module, for SQLite through modernc.org/sqlite: the smallest
// dialect that passes racefree's contract suite (dialect/dialecttest),
// and the proof that a third party can run that suite. It implements the
// Dialect interface alone, none of the optional interfaces, and claims
// only the features it can show: the suite checks those and skips the
// rest.
//
// It imports nothing of racefree but the dialect contract, package
// dialect; its test adds package session and the suite.
package thirdpartydialect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"modernc.org/sqlite"

	"github.com/racefree/racefree/dialect"
)

// Dialect is the dialect. Create it with New; it is safe for concurrent
// use once Detect has returned.
type Dialect struct {
	server string
}

var _ dialect.Dialect = (*Dialect)(nil)

// New returns the dialect, to be detected.
func New() *Dialect { return &Dialect{} }

// Name returns "minisqlite".
func (d *Dialect) Name() string { return "minisqlite" }

// Server describes the library, e.g. "SQLite 3.50.4 (minisqlite)".
func (d *Dialect) Server() string { return d.server }

// Features are what every SQLite since 3.35 has, and its one writer at a
// time.
func (d *Dialect) Features() dialect.Features {
	return dialect.Features(dialect.Returning | dialect.UpdateReturning | dialect.OnConflict |
		dialect.Savepoints | dialect.SingleWriter)
}

// Detect reads sqlite_version() and refuses a library too old for the
// features claimed.
func (d *Dialect) Detect(ctx context.Context, q dialect.Querier) error {
	var v string
	if err := q.QueryRow(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return fmt.Errorf("minisqlite: detect version: %w", err)
	}
	parts := strings.SplitN(v, ".", 3)
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	if parts[0] != "3" || minor < 35 {
		return fmt.Errorf("minisqlite: SQLite %s: need 3.35 or later", v)
	}
	d.server = "SQLite " + v + " (minisqlite)"
	return nil
}

var identRules = dialect.IdentRules{Quote: '"'}

// Quote quotes a table name with double quotes.
func (d *Dialect) Quote(table string) (string, error) { return identRules.QuoteQualified(table) }

// QuoteIdent quotes one identifier with double quotes.
func (d *Dialect) QuoteIdent(name string) (string, error) { return identRules.QuoteIdent(name) }

// Placeholder returns "?".
func (d *Dialect) Placeholder(int) string { return "?" }

// SQLite's primary result codes and the extended codes of its constraint
// failures (https://www.sqlite.org/rescode.html).
const (
	codeBusy       = 5
	codeLocked     = 6
	codeInterrupt  = 9
	codeConstraint = 19
	codeCheck      = 275
	codeForeignKey = 787
	codeNotNull    = 1299
	codePrimaryKey = 1555
	codeUnique     = 2067
)

// Classify sorts a modernc.org/sqlite error by its extended result code.
func (d *Dialect) Classify(err error) *dialect.Error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		if e := dialect.ClassifyCommon(err); e != nil {
			return e
		}
		return &dialect.Error{Class: dialect.ClassOther, Err: err}
	}
	code := se.Code()
	e := &dialect.Error{Code: strconv.Itoa(code), Err: err}
	switch {
	case code == codeUnique, code == codePrimaryKey:
		e.Class, e.Columns = dialect.ClassUniqueViolation, failed(se.Error())
	case code == codeNotNull:
		e.Class, e.Columns = dialect.ClassNotNullViolation, failed(se.Error())
	case code == codeForeignKey:
		e.Class = dialect.ClassForeignKeyViolation
	case code == codeCheck:
		e.Class = dialect.ClassCheckViolation
	case code&0xff == codeConstraint:
		e.Class = dialect.ClassIntegrityViolation
	case code&0xff == codeBusy, code&0xff == codeLocked:
		e.Class = dialect.ClassBusy
	case code&0xff == codeInterrupt:
		e.Class = dialect.ClassCanceled
	}
	return e
}

// failed returns the "table.column" names of "constraint failed: UNIQUE
// constraint failed: t.a, t.b (2067)": after the last marker, since the
// driver repeats it.
func failed(msg string) []string {
	const marker = "constraint failed: "
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return nil
	}
	rest := msg[i+len(marker):]
	if i := strings.LastIndex(rest, " ("); i >= 0 {
		rest = rest[:i]
	}
	var names []string
	for _, n := range strings.Split(rest, ",") {
		names = append(names, strings.TrimSpace(n))
	}
	return names
}
