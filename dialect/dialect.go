package dialect

import (
	"context"

	"github.com/racefree/racefree/session"
)

// Querier is what a dialect needs to ask the server about itself: the
// session contract's Querier, which every pool, connection and transaction
// racefree runs on implements, whatever client library is behind it.
type Querier = session.Querier

// Dialect is one database engine as racefree sees it. Implementations live in
// the pgdialect, mysqldialect and sqlitedialect packages; each New returns a
// fresh value that Detect then tunes to one server. After Detect returns, a
// Dialect is read-only and safe for concurrent use.
type Dialect interface {
	Classifier

	// Name is the engine family: "postgres", "mysql" or "sqlite".
	Name() string
	// Server describes the server Detect found, for example
	// "PostgreSQL 15.19" or "MariaDB 10.11.19 (Galera)". Empty before Detect.
	Server() string
	// Features is the set of capabilities of the detected server (or of a
	// recent server before Detect).
	Features() Features
	// Detect reads the server's version and settings and adjusts Features.
	Detect(ctx context.Context, q Querier) error

	// Quote quotes a table name, "name" or "schema.name" (split at the
	// first dot), for this engine. Any name the engine allows is quoted
	// (mixed case, reserved words, spaces, quote characters, non-ASCII);
	// one it cannot take is an error matching ErrInvalidIdent.
	Quote(table string) (string, error)
	// QuoteIdent quotes one identifier, a column name for example: a dot
	// is part of the name. Its rules are Quote's.
	QuoteIdent(name string) (string, error)
	// Placeholder returns the bind parameter marker for the i-th (1-based)
	// argument: "$1" on PostgreSQL, "?" elsewhere.
	Placeholder(i int) string
}

// Feature is one capability a server may or may not have.
type Feature uint64

// Features is a set of Feature bits.
type Features Feature

// The features racefree plans around.
const (
	// Returning: INSERT/UPDATE/DELETE … RETURNING (PostgreSQL, SQLite 3.35,
	// MariaDB 10.5 for INSERT and DELETE only).
	Returning Feature = 1 << iota
	// UpdateReturning: UPDATE … RETURNING (PostgreSQL, SQLite; not MariaDB).
	UpdateReturning
	// OnConflict: INSERT … ON CONFLICT (cols) DO NOTHING / DO UPDATE.
	OnConflict
	// OnDuplicateKey: INSERT … ON DUPLICATE KEY UPDATE and INSERT IGNORE.
	OnDuplicateKey
	// Savepoints: SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE SAVEPOINT.
	Savepoints
	// AdvisoryLocks: named locks that exclude every session of the cluster
	// (pg_advisory_lock; GET_LOCK except on Galera, where it is node-local).
	AdvisoryLocks
	// NodeLocalNamedLocks: the engine has named locks, but they exclude only
	// sessions on the same node (MariaDB Galera's GET_LOCK).
	NodeLocalNamedLocks
	// ForUpdate: SELECT … FOR UPDATE row locks.
	ForUpdate
	// ForShare: SELECT … FOR SHARE (or LOCK IN SHARE MODE) row locks.
	ForShare
	// SkipLocked: FOR UPDATE SKIP LOCKED.
	SkipLocked
	// NoWait: FOR UPDATE NOWAIT.
	NoWait
	// NullsNotDistinct: UNIQUE NULLS NOT DISTINCT indexes (PostgreSQL 15).
	NullsNotDistinct
	// TableLocks: LOCK TABLE (PostgreSQL) or LOCK TABLES (MySQL).
	TableLocks
	// SingleWriter: the whole database has one writer at a time (SQLite):
	// an IMMEDIATE transaction already excludes every other writer.
	SingleWriter
	// ClientRetries: the engine expects clients to retry serialization
	// failures as a matter of course (CockroachDB, TiDB optimistic mode).
	ClientRetries
	// FailedStatementAbortsTx: after a statement fails, the transaction
	// refuses every statement until it is rolled back (PostgreSQL), so a
	// statement that may fail inside a transaction the work must go on in
	// runs in a savepoint. Elsewhere a failed statement is undone on its
	// own and the transaction goes on.
	FailedStatementAbortsTx
	// PrepareOnPool: statements run faster prepared once and kept on the
	// pool than sent as text, which the server (or the in-process
	// engine) would parse on every call: MySQL/MariaDB through
	// go-sql-driver (which otherwise interpolates arguments into the
	// text), SQLite. Not PostgreSQL, whose pgx driver keeps a prepared
	// statement per connection and query text itself.
	PrepareOnPool
	// Embedded: the engine runs in the client's process (SQLite), so a
	// statement costs no round trip: a batch is many small statements of a
	// few shapes, each prepared once, rather than one large one.
	Embedded
	// SerializableIsolation: the engine runs transactions at SERIALIZABLE
	// when asked (TiDB refuses the level).
	SerializableIsolation
	// ReadOnlyTx: the engine begins read-only transactions when asked
	// (TiDB refuses them unless its no-op switch is on).
	ReadOnlyTx
	// SnapshotAtFirstStatement: the plain reads of a REPEATABLE READ
	// transaction see the snapshot taken when its first statement ran,
	// whatever that statement was, a lock it waited for included
	// (PostgreSQL, CockroachDB, TiDB), rather than at its first plain read
	// (InnoDB). A lock taken first then does not make the transaction's
	// later plain reads see what the previous holder committed: only READ
	// COMMITTED, or locking reads, do.
	SnapshotAtFirstStatement
	// DoubleQuotedStrings: a double-quoted name that is no column is read
	// as a string literal (SQLite), so a statement naming an unknown
	// column runs instead of failing: racefree checks such names against
	// the catalog first.
	DoubleQuotedStrings
	// SharedCommits: a short write transaction's time is mostly its
	// commit — it waits for the log flush while holding its row locks
	// (PostgreSQL), or every commit takes the one write lock and appends
	// to the log (SQLite) — so transfers queued behind a busy row go
	// faster sharing one transaction and one commit than taking turns,
	// each with its own. Not where the commit is cheap next to the
	// statements (MariaDB measured slower sharing) or where a transaction
	// that writes many rows is certified or retried whole (CockroachDB,
	// Galera, TiDB).
	SharedCommits
)

// Has reports whether every feature in f is in the set.
func (s Features) Has(f Feature) bool { return Feature(s)&f == f }

// With returns the set with f added.
func (s Features) With(f Feature) Features { return Features(Feature(s) | f) }

// Without returns the set with f removed.
func (s Features) Without(f Feature) Features { return Features(Feature(s) &^ f) }
