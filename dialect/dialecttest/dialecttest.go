// Package dialecttest is the contract suite of racefree's dialects: the
// tests any dialect, racefree's own or a third party's, runs against a live
// server to show that it keeps the promises of package dialect. It imports
// nothing of racefree but packages dialect and session, so a dialect that
// lives in another module runs it exactly as racefree's do:
//
//	func TestContract(t *testing.T) {
//		dialecttest.Run(t, dialecttest.Config{
//			Open: func(t testing.TB) (session.Pool, dialect.Dialect) {
//				db, err := sql.Open("mydriver", os.Getenv("MYENGINE_DSN"))
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { db.Close() })
//				return session.SQLPool{DB: db}, mydialect.New()
//			},
//		})
//	}
//
// # What it checks
//
//   - Quote: the names an engine allows round-trip through the real
//     catalog; the names it cannot take are refused with ErrInvalidIdent;
//     Placeholder numbers bound parameters as the server expects.
//   - Detect: it names the server, is idempotent, and the dialect is safe
//     for concurrent use afterwards.
//   - Features: every feature bit the dialect claims works on the server:
//     RETURNING, ON CONFLICT, ON DUPLICATE KEY, savepoints, FOR UPDATE,
//     FOR SHARE, NOWAIT, SKIP LOCKED, NULLS NOT DISTINCT, a single writer,
//     a failed statement aborting the transaction (checked both ways),
//     SERIALIZABLE and read-only transactions, prepared statements,
//     client retries.
//   - Classify: real errors of the server get their class and details:
//     unique violations naming the index the catalog knows, not-null,
//     foreign key and check violations, deadlocks, serialization failures,
//     NOWAIT lock failures, cancellation, lost connections.
//   - The optional interfaces of dialect the dialect implements:
//     SchemaReader, FreshReader (the clause really reads a row committed
//     after the snapshot, at each isolation level), IsolationReader,
//     UpsertFlagger (exactly one insert reported per key under
//     contention), BatchSizer, IgnoreChecker.
//   - Locks: the lock interfaces of package dialect join here.
//
// A feature the dialect does not claim, or an optional interface it does
// not implement, is skipped with a message saying so: the suite holds a
// dialect to what it promises, not to what another engine has.
//
// Each check opens its own pool with Config.Open and creates tables with
// random names, which it drops at the end, so that runs and packages never
// collide. The transaction runner, the get-or-create family and the other
// verbs of package racefree are racefree's own to test; this suite tests
// only what a dialect decides.
package dialecttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// Config is what the suite needs from the dialect's test. Open is
// required; the other fields are optional, and each one left out skips the
// checks that need it, with a message naming the field.
type Config struct {
	// Open returns a new pool on the database under test and a new
	// Dialect value for it (as dialect.Opener does): the suite runs Detect
	// itself. The pool must allow at least three connections at once to
	// the same database, and the caller's user must be able to create and
	// drop tables. Close the pool in t.Cleanup. Open is called once per
	// check; every pool must reach the same database.
	Open func(t testing.TB) (session.Pool, dialect.Dialect)

	// SlowQuery is a statement that runs for at least five seconds unless
	// canceled ("SELECT pg_sleep(10)", "SELECT SLEEP(10)"), for the
	// cancellation check. Empty skips Classify/Canceled.
	SlowQuery string

	// KillSession ends the server session that victim runs on, from
	// another connection of pool, as an operator would
	// (pg_terminate_backend, KILL), for the lost-connection check. Nil
	// skips Classify/ConnectionLost; an embedded engine has no session to
	// lose.
	KillSession func(ctx context.Context, pool session.Pool, victim session.Querier) error

	// Skip lists checks not to run, by their path below Run (such as
	// "Capabilities/IsolationReader/ExplicitLevel"), each with the reason
	// the skip message shows: a known deviation of the dialect that is
	// written down rather than hidden. A path that names no check fails
	// the suite, so that a typo or a renamed check cannot skip nothing.
	Skip map[string]string

	// Timeout bounds the whole suite: a check still running when it ends
	// panics with every goroutine's stack, so that a hang fails fast.
	// Zero means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds a run of the suite when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// check is one check of the suite: its path below Run, the feature the
// dialect must claim for it to run (0: none), and its test.
type check struct {
	path    string
	feature dialect.Feature
	run     func(h *h)
}

// checks are the suite's checks, in the order they run. A path's
// segments are nested subtests.
var checks = []check{
	{"Quote/CatalogRoundTrip", 0, testQuoteRoundTrip},
	{"Quote/Refused", 0, testQuoteRefused},
	{"Quote/Placeholder", 0, testPlaceholder},

	{"Detect/Server", 0, testDetectServer},
	{"Detect/ConcurrentUse", 0, testConcurrentUse},

	{"Features/Returning", dialect.Returning, testReturning},
	{"Features/UpdateReturning", dialect.UpdateReturning, testUpdateReturning},
	{"Features/OnConflict", dialect.OnConflict, testOnConflict},
	{"Features/OnDuplicateKey", dialect.OnDuplicateKey, testOnDuplicateKey},
	{"Features/Savepoints", dialect.Savepoints, testSavepoints},
	{"Features/ForUpdate", dialect.ForUpdate, testForUpdate},
	{"Features/ForShare", dialect.ForShare, testForShare},
	{"Features/NoWait", dialect.NoWait, testNoWait},
	{"Features/SkipLocked", dialect.SkipLocked, testSkipLocked},
	{"Features/NullsNotDistinct", dialect.NullsNotDistinct, testNullsNotDistinct},
	{"Features/SingleWriter", dialect.SingleWriter, testSingleWriter},
	{"Features/FailedStatementAbortsTx", 0, testFailedStatement}, // both ways
	{"Features/SerializableIsolation", dialect.SerializableIsolation, testSerializable},
	{"Features/ReadOnlyTx", dialect.ReadOnlyTx, testReadOnly},
	{"Features/PrepareOnPool", dialect.PrepareOnPool, testPrepare},
	{"Features/ClientRetries", dialect.ClientRetries, testClientRetries},

	{"Classify/NotFromServer", 0, testClassifyNotFromServer},
	{"Classify/UniqueViolation", 0, testClassifyUnique},
	{"Classify/Integrity", 0, testClassifyIntegrity},
	{"Classify/Deadlock", 0, testClassifyDeadlock},
	{"Classify/Serialization", 0, testClassifySerialization},
	{"Classify/Canceled", 0, testClassifyCanceled},
	{"Classify/ConnectionLost", 0, testClassifyConnectionLost},

	{"Capabilities/SchemaReader", 0, testSchemaReader},
	{"Capabilities/FreshReader", 0, testFreshReader},
	{"Capabilities/IsolationReader/DefaultLevel", 0, testIsolationDefault},
	{"Capabilities/IsolationReader/ExplicitLevel", 0, testIsolationExplicit},
	{"Capabilities/UpsertFlagger", 0, testUpsertFlagger},
	{"Capabilities/BatchSizer", 0, testBatchSizer},
	{"Capabilities/IgnoreChecker", 0, testIgnoreChecker},

	{"Locks", 0, testLocks},
}

// Run runs the contract suite, each check as a subtest of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.Open == nil {
		t.Fatal("dialecttest: Config.Open is nil")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	for path := range cfg.Skip {
		if !knownPath(path) {
			t.Errorf("dialecttest: Config.Skip names %q, which is no check or group of the suite", path)
		}
	}
	s := &suite{cfg: cfg}
	stop := watchdog(t.Name(), cfg.Timeout)
	defer stop()
	s.run(t, "", checks)
}

// knownPath reports whether path names a check or a group of checks.
func knownPath(path string) bool {
	for _, c := range checks {
		if c.path == path || strings.HasPrefix(c.path, path+"/") {
			return true
		}
	}
	return false
}

// run runs cs, whose paths all start with prefix, as nested subtests of t:
// consecutive checks that share their next segment share a subtest.
func (s *suite) run(t *testing.T, prefix string, cs []check) {
	for len(cs) > 0 {
		seg, _, _ := strings.Cut(strings.TrimPrefix(cs[0].path, prefix), "/")
		group := prefix + seg
		n := 1
		for n < len(cs) && strings.HasPrefix(cs[n].path, group+"/") {
			n++
		}
		part := cs[:n]
		cs = cs[n:]
		t.Run(seg, func(t *testing.T) {
			if reason, ok := s.cfg.Skip[group]; ok {
				t.Skipf("Config.Skip: %s", reason)
			}
			if len(part) == 1 && part[0].path == group {
				s.one(t, part[0])
				return
			}
			s.run(t, group+"/", part)
		})
	}
}

// one runs a check on a freshly opened and detected pool, when the
// dialect claims the check's feature.
func (s *suite) one(t *testing.T, c check) {
	h := s.open(t)
	if c.feature != 0 && !h.d.Features().Has(c.feature) {
		t.Skipf("%s does not claim %s", h.d.Server(), featureNames(dialect.Features(c.feature)))
	}
	c.run(h)
}

// suite runs the checks of one Run.
type suite struct {
	cfg Config
}

// h is what a check works with: its test, one pool on the database, and a
// detected dialect.
type h struct {
	t    *testing.T
	cfg  *Config
	pool session.Pool
	d    dialect.Dialect
	ctx  context.Context
}

// open opens a pool with Config.Open and detects its dialect.
func (s *suite) open(t *testing.T) *h {
	t.Helper()
	pool, d := s.cfg.Open(t)
	if pool == nil || d == nil {
		t.Fatalf("dialecttest: Config.Open returned pool %v, dialect %v", pool, d)
	}
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.Detect(dctx, pool); err != nil {
		t.Fatalf("Detect: %v", err)
	}
	return &h{t: t, cfg: &s.cfg, pool: pool, d: d, ctx: ctx}
}

// watchdog panics with every goroutine's stack if stop is not called
// within d.
func watchdog(name string, d time.Duration) (stop func()) {
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "dialecttest: %s still running after %v; goroutines:\n%s\n", name, d, buf)
		panic(fmt.Sprintf("dialecttest: %s still running after %v", name, d))
	})
	return func() { timer.Stop() }
}

// uniqueName returns prefix and a random suffix: lower-case ASCII, a name
// every engine takes unquoted, at most 24 bytes.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rf" + prefix + "_" + hex.EncodeToString(b[:])
}

// table creates a table called prefix_random with the given column and
// constraint definitions, in which "{t}" stands for the table's name (for
// constraint names), and drops it when the check ends. It returns the
// name and the name as Quote quoted it.
func (h *h) table(prefix, defs string) (name, quoted string) {
	h.t.Helper()
	name = uniqueName(prefix)
	quoted = h.quote(name)
	h.exec("CREATE TABLE " + quoted + " (" + strings.ReplaceAll(defs, "{t}", name) + ")")
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := h.pool.Exec(ctx, "DROP TABLE "+quoted); err != nil {
			h.t.Errorf("drop table %s: %v", quoted, err)
		}
	})
	return name, quoted
}

// quote quotes a table name and fails the check when the dialect cannot.
func (h *h) quote(name string) string {
	h.t.Helper()
	q, err := h.d.Quote(name)
	if err != nil {
		h.t.Fatalf("Quote(%q): %v", name, err)
	}
	return q
}

// exec runs a statement on the pool and fails the check on error.
func (h *h) exec(query string, args ...any) {
	h.t.Helper()
	if _, err := h.pool.Exec(h.ctx, query, args...); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
}

// count returns SELECT COUNT(*) FROM table [WHERE where] on q.
func (h *h) count(q session.Querier, table, where string) int64 {
	h.t.Helper()
	query := "SELECT COUNT(*) FROM " + table
	if where != "" {
		query += " WHERE " + where
	}
	var n int64
	if err := q.QueryRow(h.ctx, query).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ints runs a query returning one integer column on q.
func (h *h) ints(q session.Querier, query string, args ...any) []int64 {
	h.t.Helper()
	return h.intsCtx(h.ctx, q, query, args...)
}

// intsCtx is ints under ctx.
func (h *h) intsCtx(ctx context.Context, q session.Querier, query string, args ...any) []int64 {
	h.t.Helper()
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			h.t.Fatalf("%s: %v", query, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return out
}

// begin begins a transaction on the pool, rolled back when the check ends
// if it is still open.
func (h *h) begin(opts session.TxOptions) session.Tx {
	h.t.Helper()
	tx, err := h.pool.Begin(h.ctx, opts)
	if err != nil {
		h.t.Fatalf("begin %+v: %v", opts, err)
	}
	h.t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// ph returns the dialect's placeholders 1..n joined by commas.
func (h *h) ph(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = h.d.Placeholder(from + i)
	}
	return strings.Join(p, ", ")
}

// class returns the class the dialect gives err.
func (h *h) class(err error) dialect.Class { return dialect.ClassOf(h.d, err) }

// barrier lets n goroutines wait for each other once. A goroutine that
// waits longer than 20 seconds fails the check instead of hanging it.
type barrier struct {
	mu      sync.Mutex // guards waiting
	waiting int
	n       int
	release chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, release: make(chan struct{})} }

func (b *barrier) wait(t testing.TB) {
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-time.After(20 * time.Second):
		t.Error("barrier: the other transaction never arrived")
	}
}

// waitTimeout is how long a check waits for a statement it expects to be
// blocked, or to complete, before it draws its conclusion.
const waitTimeout = 10 * time.Second

// blockedFor is how long a check holds a lock while another session
// waits for it: long enough that a session not blocked would finish first.
const blockedFor = 300 * time.Millisecond
