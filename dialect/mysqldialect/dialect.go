// Package mysqldialect is racefree's MySQL and MariaDB dialect, over
// go-sql-driver/mysql. It recognises MariaDB, MariaDB Galera clusters (whose
// GET_LOCK excludes only sessions on the same node) and TiDB.
//
// Importing the package registers the "mysql" and "mariadb" DSN schemes with
// racefree.Open.
package mysqldialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Flavor is which server speaks the MySQL protocol.
type Flavor uint8

// The flavors Detect tells apart.
const (
	MySQL Flavor = iota
	MariaDB
	TiDB
)

func (f Flavor) String() string {
	return [...]string{"MySQL", "MariaDB", "TiDB"}[f]
}

// Dialect is the MySQL/MariaDB dialect. Create it with New; it is safe for
// concurrent use once Detect has returned.
type Dialect struct {
	features dialect.Features
	server   string
	flavor   Flavor
	major    int
	minor    int
	galera   bool
}

var _ dialect.Dialect = (*Dialect)(nil)

// New returns a dialect that assumes MariaDB 10.11 until Detect reads the
// real server.
func New() *Dialect {
	d := &Dialect{flavor: MariaDB, major: 10, minor: 11}
	d.features = d.computeFeatures()
	return d
}

// Name returns "mysql".
func (d *Dialect) Name() string { return "mysql" }

// Server describes the detected server, e.g. "MariaDB 10.11.19 (Galera)".
func (d *Dialect) Server() string { return d.server }

// Features returns the detected server's features.
func (d *Dialect) Features() dialect.Features { return d.features }

// Flavor returns the detected server family.
func (d *Dialect) Flavor() Flavor { return d.flavor }

// Galera reports whether the server is a node of a Galera cluster
// (wsrep_on=ON).
func (d *Dialect) Galera() bool { return d.galera }

// Detect reads VERSION() and wsrep_on.
func (d *Dialect) Detect(ctx context.Context, q dialect.Querier) error {
	var version string
	if err := q.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("mysqldialect: detect server version: %w", err)
	}
	d.flavor = MySQL
	switch {
	case strings.Contains(version, "TiDB"):
		d.flavor = TiDB
	case strings.Contains(strings.ToLower(version), "mariadb"):
		d.flavor = MariaDB
	}
	num := version
	if d.flavor == TiDB {
		// "8.0.11-TiDB-v7.5.0": the part after "-v" is TiDB's own version.
		if i := strings.Index(version, "-v"); i >= 0 {
			num = version[i+2:]
		}
	}
	d.major, d.minor = parseMajorMinor(num)
	var name, value string
	err := q.QueryRowContext(ctx, "SHOW VARIABLES LIKE 'wsrep_on'").Scan(&name, &value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("mysqldialect: detect galera: %w", err)
	default:
		d.galera = strings.EqualFold(value, "ON")
	}
	d.features = d.computeFeatures()
	d.server = fmt.Sprintf("%s %s", d.flavor, strings.SplitN(num, "-", 2)[0])
	if d.galera {
		d.server += " (Galera)"
	}
	return nil
}

func parseMajorMinor(v string) (int, int) {
	parts := strings.SplitN(v, ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	return major, minor
}

func (d *Dialect) atLeast(major, minor int) bool {
	return d.major > major || d.major == major && d.minor >= minor
}

func (d *Dialect) computeFeatures() dialect.Features {
	f := dialect.Features(dialect.OnDuplicateKey | dialect.Savepoints | dialect.ForUpdate | dialect.ForShare | dialect.TableLocks)
	switch d.flavor {
	case MariaDB:
		if d.atLeast(10, 5) {
			f = f.With(dialect.Returning) // INSERT/DELETE … RETURNING; never UPDATE
		}
		if d.atLeast(10, 3) {
			f = f.With(dialect.NoWait)
		}
		if d.atLeast(10, 6) {
			f = f.With(dialect.SkipLocked)
		}
	case MySQL:
		if d.atLeast(8, 0) {
			f = f.With(dialect.NoWait).With(dialect.SkipLocked)
		}
	case TiDB:
		f = f.With(dialect.NoWait).Without(dialect.TableLocks).With(dialect.ClientRetries)
	}
	if d.galera {
		f = f.With(dialect.NodeLocalNamedLocks)
	} else {
		f = f.With(dialect.AdvisoryLocks)
	}
	return f
}

// identRules are MySQL's rules for a quoted identifier: backticks, at most
// 64 characters of the Basic Multilingual Plane, no trailing space.
var identRules = dialect.IdentRules{Quote: '`', MaxRunes: dialect.MaxIdentLen, BMPOnly: true, NoTrailingSpace: true}

// Quote quotes a table name ("db.table" names another database) with
// backticks.
func (d *Dialect) Quote(table string) (string, error) { return identRules.QuoteQualified(table) }

// QuoteIdent quotes one identifier with backticks.
func (d *Dialect) QuoteIdent(name string) (string, error) { return identRules.QuoteIdent(name) }

// Placeholder returns "?".
func (d *Dialect) Placeholder(int) string { return "?" }
