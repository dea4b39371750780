// Package testdb finds the database servers racefree's tests run against and
// gives each test its own tables.
//
// PostgreSQL and MySQL/MariaDB are looked for at RACEFREE_POSTGRES_DSN and
// RACEFREE_MYSQL_DSN, or at the addresses the project's machines run them on
// when those are unset. An unreachable server skips its tests with a message
// naming the variable, except when CI=true, where it fails them: CI must never
// pass by testing nothing. Set a variable to "off" to skip that engine on
// purpose (never honoured under CI=true). SQLite always runs, on a file in the
// test's temporary directory.
//
// A CI lane that tests one engine or version sets RACEFREE_ENGINES to the
// engines it means ("postgres", or "mysql,galera"), with that engine's DSN
// variable pointing at the server under test. Engines left out skip, also
// under CI=true; the selected ones still fail when unreachable.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/mysqldialect" // registers mysql://
	_ "github.com/racefree/racefree/dialect/pgdialect"    // registers postgres://
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
)

// Environment variables that point the tests at servers.
const (
	PostgresEnv = "RACEFREE_POSTGRES_DSN"
	MySQLEnv    = "RACEFREE_MYSQL_DSN"
)

// Default DSNs: the servers on the project's machines (shared/SERVICES.md).
const (
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLDSN    = "mysql://root@127.0.0.1:3306/test"
)

// Engine is one database engine under test.
type Engine struct {
	// Name is "postgres", "mysql" or "sqlite".
	Name string
	env  string
	dsn  string // fixed DSN for servers; empty for SQLite
}

// Engines lists the three engines in a fixed order, selected by
// RACEFREE_ENGINES or not: Require skips the ones left out, so that a test
// run shows what it did not test.
func Engines() []Engine {
	return []Engine{
		{Name: "postgres", env: PostgresEnv, dsn: envOr(PostgresEnv, DefaultPostgresDSN)},
		{Name: "mysql", env: MySQLEnv, dsn: envOr(MySQLEnv, DefaultMySQLDSN)},
		{Name: "sqlite"},
	}
}

// Get returns the engine called name.
func Get(name string) (Engine, bool) {
	for _, e := range Engines() {
		if e.Name == name {
			return e, true
		}
	}
	return Engine{}, false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ForEach runs f as a subtest for every engine; engines whose server is
// unreachable skip (or fail under CI=true).
func ForEach(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			e.Require(t)
			f(t, e)
		})
	}
}

// InCI reports whether CI=true is set.
func InCI() bool { return os.Getenv("CI") == "true" }

var (
	reachMu sync.Mutex           // guards reach
	reach   = map[string]error{} // DSN → result of the first connection attempt
)

// Require skips tb (or fails it under CI=true) when the engine's server
// cannot be reached. It skips tb, even under CI=true, when RACEFREE_ENGINES
// leaves the engine out.
func (e Engine) Require(tb testing.TB) {
	tb.Helper()
	RequireSelected(tb, e.Name)
	if e.dsn == "" {
		return
	}
	if e.dsn == "off" {
		if InCI() {
			tb.Fatalf("%s=off, but CI=true requires every engine", e.env)
		}
		tb.Skipf("%s=off: skipping %s", e.env, e.Name)
	}
	reachMu.Lock()
	err, tried := reach[e.dsn]
	if !tried {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var db *racefree.DB
		db, err = racefree.Open(ctx, e.dsn)
		if err == nil {
			db.Close()
		}
		cancel()
		reach[e.dsn] = err
	}
	reachMu.Unlock()
	if err != nil {
		if InCI() {
			tb.Fatalf("%s server unreachable at %s (set %s): %v", e.Name, e.dsn, e.env, err)
		}
		tb.Skipf("%s server unreachable (set %s to its DSN): %v", e.Name, e.env, err)
	}
}

// DSN returns a DSN for the engine. For SQLite it is a new database file in
// tb's temporary directory: call it once per test and share the result.
func (e Engine) DSN(tb testing.TB) string {
	tb.Helper()
	if e.dsn != "" {
		return e.dsn
	}
	return "sqlite:" + filepath.Join(tb.TempDir(), "racefree.db")
}

// Open opens a DSN from DSN and closes it when tb ends.
func Open(tb testing.TB, dsn string) *racefree.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := racefree.Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Open opens a fresh database handle for the engine.
func (e Engine) Open(tb testing.TB) *racefree.DB {
	tb.Helper()
	e.Require(tb)
	return Open(tb, e.DSN(tb))
}

// UniqueName returns prefix followed by a random suffix, a valid identifier
// on every engine, so that parallel packages and repeated runs never collide.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// CreateTable creates a uniquely named table and drops it when tb ends.
// ddl is the column list and constraints, with {{table}} standing for the
// table's name wherever it is needed (index names, for example). Types
// that differ per engine can be spelled with {{id}} (an auto-increment
// primary key) and {{text}} (a short indexable string).
func CreateTable(tb testing.TB, db *racefree.DB, prefix, ddl string) string {
	tb.Helper()
	name := UniqueName(prefix)
	ctx := context.Background()
	stmt := "CREATE TABLE " + name + " (" + Expand(db.Dialect().Name(), ddl, name) + ")"
	if _, err := db.SQL().ExecContext(ctx, stmt); err != nil {
		tb.Fatalf("create table: %v\n%s", err, stmt)
	}
	tb.Cleanup(func() {
		if _, err := db.SQL().ExecContext(context.Background(), "DROP TABLE IF EXISTS "+name); err != nil {
			tb.Errorf("drop table %s: %v", name, err)
		}
	})
	return name
}

// Expand replaces the {{…}} markers CreateTable understands.
func Expand(engine, ddl, table string) string {
	id := map[string]string{
		"postgres": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
		"mysql":    "BIGINT AUTO_INCREMENT PRIMARY KEY",
		"sqlite":   "INTEGER PRIMARY KEY AUTOINCREMENT",
	}[engine]
	text := map[string]string{"postgres": "TEXT", "mysql": "VARCHAR(191)", "sqlite": "TEXT"}[engine]
	r := strings.NewReplacer("{{table}}", table, "{{id}}", id, "{{text}}", text)
	return r.Replace(ddl)
}

// Exec runs a statement and fails tb on error.
func Exec(tb testing.TB, db *racefree.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.SQL().ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("exec %q: %v", query, err)
	}
}

// QueryInt runs a query returning one integer and fails tb on error.
func QueryInt(tb testing.TB, db *racefree.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.SQL().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("query %q: %v", query, err)
	}
	return n
}

// Watchdog fails tb and dumps nothing more if done is not closed within d:
// call it at the start of every concurrency test so that a hang fails fast
// instead of stalling the run. It returns a func to call when the work is
// done.
func Watchdog(tb testing.TB, d time.Duration) (stop func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(d):
			panic(fmt.Sprintf("watchdog: %s still running after %v", tb.Name(), d))
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done) }) }
	tb.Cleanup(stop)
	return stop
}
