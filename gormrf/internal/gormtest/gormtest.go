// Package gormtest opens the engines gormrf's tests run against through
// GORM, and runs test workers in separate OS processes.
//
// It follows the core module's internal/testdb and internal/proctest, which
// another module cannot import: PostgreSQL and MySQL/MariaDB are looked for
// at RACEFREE_POSTGRES_DSN and RACEFREE_MYSQL_DSN (or the project machines'
// defaults); an unreachable server skips its tests with a message naming
// the variable, except under CI=true, where it fails them. SQLite always
// runs, on a file in the test's temporary directory.
package gormtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/dialect/mysqldialect"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/gormrf"
)

// Environment variables and defaults, as in the core module's tests.
const (
	PostgresEnv        = "RACEFREE_POSTGRES_DSN"
	MySQLEnv           = "RACEFREE_MYSQL_DSN"
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLDSN    = "mysql://root@127.0.0.1:3306/test"
)

// Engine is one database engine under test.
type Engine struct {
	Name string // "postgres", "mysql" or "sqlite"
	env  string
	dsn  string // empty for SQLite
}

// Engines lists the three engines in a fixed order.
func Engines() []Engine {
	return []Engine{
		{Name: "postgres", env: PostgresEnv, dsn: envOr(PostgresEnv, DefaultPostgresDSN)},
		{Name: "mysql", env: MySQLEnv, dsn: envOr(MySQLEnv, DefaultMySQLDSN)},
		{Name: "sqlite"},
	}
}

// Get returns the engine called name.
func Get(name string) Engine {
	for _, e := range Engines() {
		if e.Name == name {
			return e
		}
	}
	panic("gormtest: unknown engine " + name)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// InCI reports whether CI=true is set.
func InCI() bool { return os.Getenv("CI") == "true" }

// ForEach runs f as a subtest per engine; an unreachable server skips (or
// fails under CI=true).
func ForEach(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			e.Require(t)
			f(t, e)
		})
	}
}

var (
	reachMu sync.Mutex           // guards reach
	reach   = map[string]error{} // DSN → result of the first connection attempt
)

// Require skips tb (fails it under CI=true) when the server is unreachable.
func (e Engine) Require(tb testing.TB) {
	tb.Helper()
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
		var db *sql.DB
		if db, _, err = e.openSQL(""); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
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

// SQLitePath returns a new SQLite file path in tb's temporary directory,
// for Open; other engines ignore it.
func SQLitePath(tb testing.TB) string { return filepath.Join(tb.TempDir(), "gormrf.db") }

// openSQL opens the engine's *sql.DB with racefree's dialect package, and
// returns the dialect. path is the SQLite file.
func (e Engine) openSQL(path string) (*sql.DB, dialect.Dialect, error) {
	switch e.Name {
	case "postgres":
		db, err := pgdialect.Open(e.dsn)
		return db, pgdialect.New(), err
	case "mysql":
		db, err := mysqldialect.Open(e.dsn)
		return db, mysqldialect.New(), err
	default:
		db, err := sqlitedialect.Open(path)
		return db, sqlitedialect.New(), err
	}
}

// Open opens a *gorm.DB on the engine with racefree registered, its pool
// capped at maxConns, and closes it when tb ends. PostgreSQL and MySQL
// are opened the way GORM users do, with GORM's dialector and a DSN; SQLite
// on racefree's *sql.DB (write transactions IMMEDIATE), handed to GORM's
// SQLite dialector as its connection.
func (e Engine) Open(tb testing.TB, sqlitePath string, maxConns int) *gorm.DB {
	tb.Helper()
	e.Require(tb)
	var (
		dialector gorm.Dialector
		d         dialect.Dialect
	)
	switch e.Name {
	case "postgres":
		dialector, d = postgres.Open(e.dsn), pgdialect.New()
	case "mysql":
		cfg, err := mysqldialect.ParseDSN(e.dsn)
		if err != nil {
			tb.Fatal(err)
		}
		dialector, d = mysql.Open(cfg.FormatDSN()), mysqldialect.New()
	default:
		sqlDB, sd, err := e.openSQL(sqlitePath)
		if err != nil {
			tb.Fatal(err)
		}
		dialector, d = sqlite.New(sqlite.Config{Conn: sqlDB}), sd
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		tb.Fatalf("gorm open %s: %v", e.Name, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		tb.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(maxConns)
	tb.Cleanup(func() { sqlDB.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gormrf.Register(ctx, gdb, d); err != nil {
		tb.Fatalf("register racefree on %s: %v", e.Name, err)
	}
	return gdb
}

// UniqueName returns prefix and a random suffix: a table name no other
// test or run uses.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// CreateTable creates a uniquely named table and drops it when tb ends.
// In ddl, {{table}} is the table's name, {{id}} an auto-increment primary
// key, {{text}} an indexable string, {{time}} a timestamp with sub-second
// precision, {{bool}} a boolean.
func CreateTable(tb testing.TB, db *gorm.DB, prefix, ddl string) string {
	tb.Helper()
	name := UniqueName(prefix)
	stmt := "CREATE TABLE " + name + " (" + Expand(db.Dialector.Name(), ddl, name) + ")"
	if err := db.Exec(stmt).Error; err != nil {
		tb.Fatalf("create table: %v\n%s", err, stmt)
	}
	tb.Cleanup(func() {
		if err := db.Exec("DROP TABLE IF EXISTS " + name).Error; err != nil {
			tb.Errorf("drop table %s: %v", name, err)
		}
	})
	return name
}

// Expand replaces the markers CreateTable understands.
func Expand(engine, ddl, table string) string {
	types := map[string][4]string{
		"postgres": {"BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "TEXT", "TIMESTAMPTZ", "BOOLEAN"},
		"mysql":    {"BIGINT AUTO_INCREMENT PRIMARY KEY", "VARCHAR(191)", "DATETIME(3)", "BOOLEAN"},
		"sqlite":   {"INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "DATETIME", "NUMERIC"},
	}[engine]
	return strings.NewReplacer("{{table}}", table, "{{id}}", types[0], "{{text}}", types[1],
		"{{time}}", types[2], "{{bool}}", types[3]).Replace(ddl)
}

// Watchdog panics when the test runs longer than d, so that a hang fails
// fast; it stops when tb ends.
func Watchdog(tb testing.TB, d time.Duration) {
	tb.Helper()
	done := make(chan struct{})
	name := tb.Name()
	go func() {
		select {
		case <-done:
		case <-time.After(d):
			panic(fmt.Sprintf("watchdog: %s still running after %v", name, d))
		}
	}()
	tb.Cleanup(func() { close(done) })
}
