// Package sqlitedialect is racefree's SQLite dialect, over the pure-Go
// modernc.org/sqlite driver: nothing to install, no cgo.
//
// SQLite has one writer at a time. racefree opens it so that concurrent use
// works: WAL journal (readers never block the writer), a busy timeout
// (a writer waits for the lock instead of failing at once), foreign keys
// on, and write transactions begun IMMEDIATE, so a transaction takes the
// write lock when it begins rather than when it first writes. A deferred
// transaction that reads and then writes fails with SQLITE_BUSY at once when
// another writer got in between, and the busy timeout cannot help it; an
// immediate one waits its turn.
//
// Importing the package registers the "sqlite" and "file" DSN schemes with
// racefree.Open.
package sqlitedialect

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Dialect is the SQLite dialect. Create it with New; it is safe for
// concurrent use once Detect has returned.
type Dialect struct {
	features dialect.Features
	server   string
	version  [3]int
}

var _ dialect.Dialect = (*Dialect)(nil)

// New returns a SQLite dialect that assumes SQLite 3.35 or later until
// Detect reads the real library version.
func New() *Dialect {
	d := &Dialect{version: [3]int{3, 35, 0}}
	d.features = d.computeFeatures()
	return d
}

// Name returns "sqlite".
func (d *Dialect) Name() string { return "sqlite" }

// Server describes the library, e.g. "SQLite 3.50.4".
func (d *Dialect) Server() string { return d.server }

// Features returns the library's features.
func (d *Dialect) Features() dialect.Features { return d.features }

// Detect reads sqlite_version(): RETURNING needs 3.35, ON CONFLICT 3.24.
func (d *Dialect) Detect(ctx context.Context, q dialect.Querier) error {
	var v string
	if err := q.QueryRow(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return fmt.Errorf("sqlitedialect: detect version: %w", err)
	}
	for i, p := range strings.SplitN(v, ".", 3) {
		d.version[i], _ = strconv.Atoi(p)
	}
	d.features = d.computeFeatures()
	d.server = "SQLite " + v
	return nil
}

func (d *Dialect) atLeast(minor int) bool {
	return d.version[0] > 3 || d.version[0] == 3 && d.version[1] >= minor
}

func (d *Dialect) computeFeatures() dialect.Features {
	f := dialect.Features(dialect.Savepoints | dialect.SingleWriter | dialect.PrepareOnPool | dialect.Embedded |
		dialect.SerializableIsolation | dialect.ReadOnlyTx | dialect.DoubleQuotedStrings | dialect.SharedCommits)
	if d.atLeast(24) {
		f = f.With(dialect.OnConflict)
	}
	if d.atLeast(35) {
		f = f.With(dialect.Returning).With(dialect.UpdateReturning)
	}
	return f
}

// identRules are SQLite's rules for a quoted identifier: double quotes,
// no length limit of the engine's own.
var identRules = dialect.IdentRules{Quote: '"'}

// Quote quotes a table name ("schema.table" names an attached database)
// with double quotes.
func (d *Dialect) Quote(table string) (string, error) { return identRules.QuoteQualified(table) }

// QuoteIdent quotes one identifier with double quotes.
func (d *Dialect) QuoteIdent(name string) (string, error) { return identRules.QuoteIdent(name) }

// Placeholder returns "?".
func (d *Dialect) Placeholder(int) string { return "?" }
