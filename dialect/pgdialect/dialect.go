// Package pgdialect is racefree's PostgreSQL dialect, over pgx v5's
// database/sql driver. It also recognises CockroachDB, which speaks the
// PostgreSQL protocol but has no session advisory locks and expects clients
// to retry serialization failures (see cockroach.go: designed from
// CockroachDB's documentation, tested against a fake server only).
//
// Importing the package registers the "postgres" and "postgresql" DSN
// schemes with racefree.Open.
package pgdialect

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated by the
// server, which would make two different names collide.
const maxIdentLen = 63

// Dialect is the PostgreSQL dialect. Create it with New; it is safe for
// concurrent use once Detect has returned.
type Dialect struct {
	features    dialect.Features
	server      string
	versionNum  int  // server_version_num, e.g. 150019
	cockroachDB bool // the server is CockroachDB
	// crdbMajor and crdbMinor are CockroachDB's own release (24 and 1
	// for v24.1.2), 0 when version() names none.
	crdbMajor, crdbMinor int
}

var _ dialect.Dialect = (*Dialect)(nil)

// baseFeatures is what every supported PostgreSQL (12 and later) has.
const baseFeatures = dialect.Features(dialect.Returning | dialect.UpdateReturning | dialect.OnConflict |
	dialect.Savepoints | dialect.AdvisoryLocks | dialect.ForUpdate | dialect.ForShare |
	dialect.SkipLocked | dialect.NoWait | dialect.TableLocks | dialect.FailedStatementAbortsTx |
	dialect.SerializableIsolation | dialect.ReadOnlyTx | dialect.SnapshotAtFirstStatement)

// New returns a PostgreSQL dialect that assumes a recent server until Detect
// reads the real one.
func New() *Dialect {
	return &Dialect{features: baseFeatures.With(dialect.NullsNotDistinct), versionNum: 150000}
}

// Name returns "postgres".
func (d *Dialect) Name() string { return "postgres" }

// Server describes the detected server, e.g. "PostgreSQL 15.19".
func (d *Dialect) Server() string { return d.server }

// Features returns the detected server's features.
func (d *Dialect) Features() dialect.Features { return d.features }

// VersionNum returns server_version_num (150019 for 15.19).
func (d *Dialect) VersionNum() int { return d.versionNum }

// CockroachDB reports whether the server is CockroachDB.
func (d *Dialect) CockroachDB() bool { return d.cockroachDB }

// Detect reads the server version: NULLS NOT DISTINCT needs PostgreSQL 15,
// and CockroachDB lacks session advisory locks, table locks and NULLS NOT
// DISTINCT, and expects clients to retry.
func (d *Dialect) Detect(ctx context.Context, q dialect.Querier) error {
	var version, num string
	if err := q.QueryRow(ctx, "SELECT version(), current_setting('server_version_num')").Scan(&version, &num); err != nil {
		return fmt.Errorf("pgdialect: detect server version: %w", err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return fmt.Errorf("pgdialect: parse server_version_num %q: %w", num, err)
	}
	d.versionNum = n
	d.cockroachDB, d.crdbMajor, d.crdbMinor = false, 0, 0
	d.features = baseFeatures.With(dialect.SharedCommits)
	if n >= 150000 {
		d.features = d.features.With(dialect.NullsNotDistinct)
	}
	if strings.Contains(version, "CockroachDB") {
		d.cockroachDB = true
		d.features = d.features.Without(dialect.AdvisoryLocks).Without(dialect.TableLocks).
			Without(dialect.NullsNotDistinct).Without(dialect.SharedCommits).With(dialect.ClientRetries)
		d.server = "CockroachDB"
		if release, major, minor, ok := cockroachVersion(version); ok {
			d.server += " " + release
			d.crdbMajor, d.crdbMinor = major, minor
		}
		return nil
	}
	d.server = fmt.Sprintf("PostgreSQL %d.%d", n/10000, n%10000)
	return nil
}

// identRules are PostgreSQL's rules for a quoted identifier: double
// quotes, at most 63 bytes (longer names would be truncated).
var identRules = dialect.IdentRules{Quote: '"', MaxBytes: maxIdentLen}

// Quote quotes a table name ("schema.table" too) with double quotes.
func (d *Dialect) Quote(table string) (string, error) { return identRules.QuoteQualified(table) }

// QuoteIdent quotes one identifier with double quotes.
func (d *Dialect) QuoteIdent(name string) (string, error) { return identRules.QuoteIdent(name) }

// Placeholder returns "$i".
func (d *Dialect) Placeholder(i int) string { return "$" + strconv.Itoa(i) }
