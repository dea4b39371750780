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
	features   dialect.Features
	server     string
	flavor     Flavor
	major      int
	minor      int
	galera     bool
	optimistic bool // TiDB runs transactions in optimistic mode by default
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

// Server describes the detected server, e.g. "MariaDB 10.11.19 (Galera)"
// or "TiDB 8.4.0 (optimistic)".
func (d *Dialect) Server() string { return d.server }

// Features returns the detected server's features.
func (d *Dialect) Features() dialect.Features { return d.features }

// Flavor returns the detected server family.
func (d *Dialect) Flavor() Flavor { return d.flavor }

// Galera reports whether the server is a node of a Galera cluster
// (wsrep_on=ON).
func (d *Dialect) Galera() bool { return d.galera }

// Optimistic reports whether the server is TiDB running transactions in
// optimistic mode by default (tidb_txn_mode other than "pessimistic"):
// conflicting writes then fail at COMMIT with a write conflict (9007)
// instead of waiting for a lock.
func (d *Dialect) Optimistic() bool { return d.optimistic }

// Detect reads VERSION(), wsrep_on and, on TiDB, tidb_txn_mode.
func (d *Dialect) Detect(ctx context.Context, q dialect.Querier) error {
	var version string
	if err := q.QueryRow(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("mysqldialect: detect server version: %w", err)
	}
	var num string
	d.flavor, num = parseVersion(version)
	d.major, d.minor = parseMajorMinor(num)
	var name, value string
	err := q.QueryRow(ctx, "SHOW VARIABLES LIKE 'wsrep_on'").Scan(&name, &value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("mysqldialect: detect galera: %w", err)
	default:
		d.galera = strings.EqualFold(value, "ON")
	}
	d.optimistic = false
	if d.flavor == TiDB {
		// Pessimistic is the default since TiDB 3.0.8; an empty value
		// means optimistic, as it did before.
		var mode string
		if err := q.QueryRow(ctx, "SELECT @@tidb_txn_mode").Scan(&mode); err != nil {
			return fmt.Errorf("mysqldialect: detect tidb_txn_mode: %w", err)
		}
		d.optimistic = !strings.EqualFold(mode, "pessimistic")
	}
	d.features = d.computeFeatures()
	d.server = fmt.Sprintf("%s %s", d.flavor, strings.SplitN(num, "-", 2)[0])
	switch {
	case d.galera:
		d.server += " (Galera)"
	case d.optimistic:
		d.server += " (optimistic)"
	}
	return nil
}

// parseVersion tells the flavor from VERSION() and returns the part that
// holds the flavor's own version number: "10.11.19-MariaDB-0+deb12u1",
// "8.0.36", and TiDB's "8.0.11-TiDB-v8.4.0", where 8.0.11 is the MySQL
// version TiDB imitates and 8.4.0 its own.
func parseVersion(version string) (Flavor, string) {
	switch {
	case strings.Contains(version, "-TiDB-"):
		num := version[strings.Index(version, "-TiDB-")+len("-TiDB-"):]
		return TiDB, strings.TrimPrefix(num, "v")
	case strings.Contains(version, "TiDB"):
		return TiDB, version
	case strings.Contains(strings.ToLower(version), "mariadb"):
		return MariaDB, version
	}
	return MySQL, version
}

func parseMajorMinor(v string) (int, int) {
	parts := strings.SplitN(v, ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	}
	return major, minor
}

func (d *Dialect) atLeast(major, minor int) bool {
	return d.major > major || d.major == major && d.minor >= minor
}

func (d *Dialect) computeFeatures() dialect.Features {
	f := dialect.Features(dialect.OnDuplicateKey | dialect.Savepoints | dialect.ForUpdate | dialect.ForShare | dialect.TableLocks |
		dialect.PrepareOnPool | dialect.SerializableIsolation | dialect.ReadOnlyTx)
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
		// Measured on TiDB 8.4: FOR SHARE and LOCK IN SHARE MODE fail with
		// 1235 unless tidb_enable_noop_functions is on, and then lock
		// nothing; SKIP LOCKED is accepted and ignored (a locked row is
		// returned at once); LOCK TABLES succeeds and locks nothing unless
		// the server runs with enable-table-lock. NOWAIT works (3572).
		// SAVEPOINT exists since TiDB 6.2 (a version that does not parse
		// is taken to be recent).
		// SERIALIZABLE fails with 8048, and read-only transactions with
		// 1235 (unless the no-op switch is on). A REPEATABLE READ
		// transaction reads the snapshot of its first statement, even
		// one that waited for a lock.
		f = f.Without(dialect.ForShare).Without(dialect.TableLocks).With(dialect.NoWait).
			Without(dialect.SerializableIsolation).Without(dialect.ReadOnlyTx).With(dialect.SnapshotAtFirstStatement)
		if d.major > 0 && !d.atLeast(6, 2) {
			f = f.Without(dialect.Savepoints)
		}
		if d.optimistic {
			// Only in optimistic mode does every conflicting write end in
			// a write conflict the client must retry; pessimistic mode
			// (the default) waits for row locks as InnoDB does.
			f = f.With(dialect.ClientRetries)
		}
	}
	if d.galera {
		f = f.With(dialect.NodeLocalNamedLocks)
	} else {
		// TiDB's GET_LOCK is cluster-wide (held in the storage layer).
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
