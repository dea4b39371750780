package racefree

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
	"golang.org/x/sync/singleflight"
)

// DB is a database handle that knows its engine: a *sql.DB with the dialect
// detected from the server. It is safe for concurrent use by many
// goroutines, like *sql.DB.
type DB struct {
	pool  session.Pool // the connections: sqlPool, or another adapter's
	sql   *sql.DB      // the *sql.DB behind pool when New or Open made the DB
	d     dialect.Dialect
	owned bool // Close closes sql: Open created it

	// schemas caches the catalog facts of each table the get-or-create
	// family has touched: table name → *dialect.Table. See schema.go.
	schemas sync.Map
	// schemaReads shares one catalog read of a table among the calls on
	// the pool that find it missing at once (a service's first burst),
	// which would otherwise each read it. See schema.go.
	schemaReads singleflight.Group
	// hitStats holds the observed hit ratio per (table, lookup columns)
	// for adaptive get-or-create: key → *hitStat. See strategy.go.
	hitStats sync.Map
	// stmts holds the get-or-create family's prepared statements on
	// MySQL and SQLite: query text → session.Stmt. See getorcreate_stmt.go.
	stmts sync.Map
	// codecs holds the result-type codec of each (catalog entry, result
	// type): codecKey → *codec. See row.go.
	codecs sync.Map
	// sqlCache holds the get-or-create family's statements built outside a
	// plan (NULL lookups, locking re-reads), per shape: sqlKey → string.
	// batchSQL holds GetOrCreateMany's: batchSQLKey → string.
	sqlCache, batchSQL sync.Map
	// planIDs numbers the plans (plan.id).
	planIDs atomic.Uint64
	// plans holds what planCall worked out per shape of call. See plan.go.
	plans planCache
	// flights holds the coalesced calls in flight (see coalesce.go),
	// keyed by flightKey; coalesced counts the calls another call's trip
	// answered, for tests. See coalesce.go.
	flights   coalescer
	coalesced atomic.Int64
	// observer receives racefree's events, or is nil (see observe.go).
	observer Observer
	// lostRaces counts get-or-create calls that lost the race to create a
	// row and returned the winner's, for tests.
	lostRaces atomic.Int64
	// locks is what LockNamed knows of its lock table, and leases what
	// AcquireLease knows of its lease table, on this database. See
	// namedlock_table.go and fencing.go.
	locks  lockTableState
	leases leaseTableState
	// native reads hits on the connections of database/sql without its
	// per-query work, where the dialect can. See call_native.go.
	native nativeReads
	// writers queues this process's transfers on an embedded engine with
	// one writer. See transfer_gate.go.
	writers writerGate
	// transfers tracks the transfers in flight per table, so that those
	// behind a busy row share a commit. See transfer_share.go.
	transfers transferLanes
	// once is RunOnce's key tables and sweeping. See once.go.
	once onceState
}

// Open opens the database a DSN names and detects its server:
//
//	postgres://user@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://)
//	mysql://user:pass@host:3306/db                 MySQL, MariaDB, TiDB (also mariadb://)
//	user:pass@tcp(host:3306)/db                    the same in go-sql-driver's form
//	sqlite:path/to/file.db, file:…, or a bare path SQLite
//
// The engine's dialect package must be imported, for example
//
//	import _ "github.com/racefree/racefree/dialect/pgdialect"
//
// so that a program pays only for the drivers it uses. ctx governs the
// first connection, which Open makes to read the server's version. opts
// configure the DB (WithObserver).
func Open(ctx context.Context, dsn string, opts ...DBOption) (*DB, error) {
	scheme, err := dialect.SchemeOf(dsn)
	if err != nil {
		return nil, fmt.Errorf("racefree: open: %w", err)
	}
	open, err := dialect.Lookup(scheme)
	if err != nil {
		return nil, fmt.Errorf("racefree: open: %w", err)
	}
	sqlDB, d, err := open(dsn)
	if err != nil {
		return nil, fmt.Errorf("racefree: open %s: %w", scheme, err)
	}
	db, err := New(ctx, sqlDB, d, opts...)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	db.owned = true
	return db, nil
}

// New wraps a *sql.DB you already have, naming its dialect (for example
// pgdialect.New()). It pings the server and reads its version; ctx governs
// that. Close on the result does not close sqlDB: it stays yours.
//
// For SQLite, open sqlDB with sqlitedialect.DriverDSN so that write
// transactions begin IMMEDIATE; otherwise a transaction that reads before
// it writes can fail with SQLITE_BUSY whatever the busy timeout.
func New(ctx context.Context, sqlDB *sql.DB, d dialect.Dialect, opts ...DBOption) (*DB, error) {
	if sqlDB == nil {
		return nil, errors.New("racefree: new: nil *sql.DB")
	}
	db, err := NewSession(ctx, session.SQLPool{DB: sqlDB}, d, opts...)
	if err != nil {
		return nil, err
	}
	db.sql = sqlDB
	db.initNativeReads()
	return db, nil
}

// NewSession makes a DB over a pool of another client library than
// database/sql, through the session contract: it is for adapter packages
// such as pgxrf, whose own constructors programs call. It reads the
// server's version; ctx governs that, and a server that cannot be reached
// or turns the session away (ErrUnavailable) is waited for within ctx
// and DefaultMaxElapsed. Close does not close pool.
func NewSession(ctx context.Context, pool session.Pool, d dialect.Dialect, opts ...DBOption) (*DB, error) {
	if pool == nil {
		return nil, errors.New("racefree: new: nil pool")
	}
	if d == nil {
		return nil, errors.New("racefree: new: nil dialect")
	}
	db := &DB{pool: pool, d: d}
	// A server restarting, or full (too many connections), is waited out
	// within ctx and the default retry budget.
	detect := func(ctx context.Context) error { return d.Detect(ctx, pool) }
	if err := db.retryIdempotent(ctx, detect(ctx), detect); err != nil {
		return nil, fmt.Errorf("racefree: connect to %s: %w", d.Name(), err)
	}
	for _, o := range opts {
		o(db)
	}
	return db, nil
}

// DBOption configures a DB when it is opened (Open, New, NewSession).
type DBOption func(*DB)

// WithObserver sends racefree's events on the DB to o (see Observer).
func WithObserver(o Observer) DBOption { return func(db *DB) { db.observer = o } }

// SQL returns the underlying *sql.DB, or nil when the DB was made over
// another client library (see NewSession).
func (db *DB) SQL() *sql.DB { return db.sql }

// Session returns the pool racefree runs statements on: the *sql.DB as a
// session.Pool, or another adapter's pool.
func (db *DB) Session() session.Pool { return db.pool }

// Dialect returns the detected dialect.
func (db *DB) Dialect() dialect.Dialect { return db.d }

// Classify classifies an error from a statement on this database, for
// errors.Is against the Err* classes and for the violated constraint's name.
// It returns nil for a nil error. The result is the classification, not an
// error to pass on blindly: a nil *dialect.Error stored in an error
// variable is not a nil error, so classify only an err known to be non-nil
// (if err != nil { return db.Classify(err) }).
func (db *DB) Classify(err error) *dialect.Error { return db.d.Classify(err) }

// Close releases the statements racefree prepared and closes the *sql.DB
// if Open created it; a *sql.DB passed to New is left open.
func (db *DB) Close() error {
	// The prepared statements live on the pool's connections: on a pool
	// the caller keeps (New), they must not outlive this DB.
	db.stmts.Range(func(k, s any) bool {
		s.(session.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	if db.owned {
		return db.sql.Close()
	}
	return nil
}

// wrapErr classifies err and wraps it as "racefree: verb: err". A nil err
// stays nil.
func (db *DB) wrapErr(verb string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("racefree: %s: %w", verb, db.d.Classify(err))
}
