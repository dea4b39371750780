package sqlitedialect

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/racefree/racefree/dialect"
)

// DefaultBusyTimeout is how long a connection waits for the write lock
// before SQLite returns SQLITE_BUSY. racefree's transaction runner retries
// BUSY on top of this.
const DefaultBusyTimeout = 5 * time.Second

func init() {
	dialect.Register("sqlite", openDialect)
	dialect.Register("file", openDialect)
}

// Open opens a SQLite database file for concurrent use (see the package
// doc). dsn is a path, "sqlite:path", "sqlite://path" or "file:path", with
// optional query parameters for the driver; a busy_timeout or journal_mode
// pragma given there replaces racefree's default. ":memory:" gives one
// in-memory database on a single connection.
func Open(dsn string) (*sql.DB, error) {
	driverDSN, memory, err := DriverDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlitedialect: open: %w", err)
	}
	if memory {
		// Each connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
	}
	return db, nil
}

// DriverDSN turns a racefree SQLite DSN into the modernc.org/sqlite DSN
// racefree opens, with WAL, the busy timeout, foreign keys and IMMEDIATE
// write transactions set. Use it to open a *sql.DB yourself that behaves as
// racefree.Open's would. memory reports an in-memory database.
func DriverDSN(dsn string) (driverDSN string, memory bool, err error) {
	path := dsn
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(path, p) {
			path = strings.TrimPrefix(path, p)
			break
		}
	}
	rawQuery := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, rawQuery = path[:i], path[i+1:]
	}
	if path == "" {
		return "", false, fmt.Errorf("sqlitedialect: parse DSN %q: no file path", dsn)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false, fmt.Errorf("sqlitedialect: parse DSN %q: %w", dsn, err)
	}
	memory = path == ":memory:"
	pragmas := strings.Join(q["_pragma"], ",")
	if !strings.Contains(pragmas, "busy_timeout") {
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	}
	if !memory && !strings.Contains(pragmas, "journal_mode") {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	if !strings.Contains(pragmas, "foreign_keys") {
		q.Add("_pragma", "foreign_keys(1)")
	}
	if !strings.Contains(pragmas, "synchronous") && !memory {
		// NORMAL is durable against application crashes in WAL mode and
		// avoids an fsync per commit.
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), memory, nil
}

func openDialect(dsn string) (*sql.DB, dialect.Dialect, error) {
	db, err := Open(dsn)
	if err != nil {
		return nil, nil, err
	}
	return db, New(), nil
}
