package racefree

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/racefree/racefree/dialect"
)

// Defaults of OnceOptions.
const (
	// DefaultOnceTable is the table RunOnce keeps its keys in.
	DefaultOnceTable = "racefree_once"
	// DefaultOnceTTL is how long RunOnce remembers a key at least.
	DefaultOnceTTL = 24 * time.Hour
)

// How RunOnce keeps its key table small: after every onceSweepEvery keys
// a DB has written, it deletes up to onceSweepLimit expired ones, so that
// expired keys go at least as fast as new keys come.
const (
	onceSweepEvery = 256
	onceSweepLimit = 1024
	onceKeyMax     = 255 // bytes a key is stored as is; longer ones are hashed
)

// OnceOptions configure RunOnce. The zero value keeps keys for
// DefaultOnceTTL in DefaultOnceTable, and runs the transaction with
// RunInTx's defaults.
type OnceOptions struct {
	// Tx are the options of the transaction fn runs in, budgets included.
	Tx TxOptions
	// TTL is how long a key is remembered at least: a call with a key
	// older than that may run fn again. 0 means DefaultOnceTTL.
	TTL time.Duration
	// Table is the key table: 0 means DefaultOnceTable. RunOnce creates it
	// on first use (see CreateOnceTable).
	Table string
}

func (o OnceOptions) ttl() time.Duration {
	if o.TTL > 0 {
		return o.TTL
	}
	return DefaultOnceTTL
}

func (o OnceOptions) table() string {
	if o.Table != "" {
		return o.Table
	}
	return DefaultOnceTable
}

// RunOnce runs fn in a transaction at most once per key, and returns the
// result of the run that committed, however often it is called with that
// key and whatever the network does.
//
// The key (an idempotency key: a request id, a payment reference) is
// written to a table of its own (OnceOptions.Table) in the same
// transaction as fn's work, before it; the row exists exactly when the
// work committed. So:
//   - a call whose key was already written does not run fn: it returns the
//     result stored then, with ran false;
//   - two calls with one key at once: the second waits at the key until the
//     first ends, then returns its result (or, if the first rolled back,
//     runs fn itself);
//   - when a COMMIT's answer is lost (ErrCommitUnknown), RunOnce runs the
//     call again with the same key: the key row decides — there, and the
//     first COMMIT had landed, so its stored result is returned (ran true:
//     it was this call's run); absent, and fn runs again. The key's row
//     lock makes the new attempt wait for the old transaction if the server
//     has not finished it yet.
//
// fn's result is stored as JSON (encoding/json: exported fields, no
// channels or functions); a zero result stores nothing and comes back
// zero. fn may run more than once — RunInTx retries what did not commit —
// but commits at most once per key. An error from fn rolls the
// transaction back and stores nothing, so a later call runs fn again.
//
// Keys are remembered for at least OnceOptions.TTL (24 h by default):
// after every 256 new keys a DB deletes up to 1,024 expired ones, so the
// table holds about rate × TTL rows; SweepOnce deletes them on demand.
// Expiry is by the clock of the process that wrote the key. Keys are
// compared byte for byte; one longer than 255 bytes, or not valid UTF-8,
// or holding a NUL, is stored as its SHA-256.
//
// The transaction runs on db's pool with opts.Tx; ctx governs it. An error
// matching ErrCommitUnknown is returned only when the outcome could not be
// settled within the budget (the server unreachable until ctx or
// opts.Tx's budget ended).
func RunOnce[T any](ctx context.Context, db *DB, key string, opts OnceOptions, fn func(ctx context.Context, tx *Tx) (T, error)) (result T, ran bool, err error) {
	const verb = "run once"
	switch {
	case db == nil || db.pool == nil:
		return result, false, fmt.Errorf("racefree: %s: %w", verb, errNilExecutor)
	case fn == nil:
		return result, false, inputError(verb, "nil function")
	case key == "":
		return result, false, inputError(verb, "empty key")
	}
	if err := db.checkTxOptions(opts.Tx); err != nil {
		return result, false, err
	}
	t, err := db.onceTable(ctx, opts.table())
	if err != nil {
		return result, false, err
	}
	k, owner := onceKey(key), newOwner()
	policy := policyOrDefault(opts.Tx.Retry)
	start := time.Now()
	var unknown error // the last unknown COMMIT, while it is not settled
	for attempt := 1; ; attempt++ {
		var out T
		err := RunInTx(ctx, db, opts.Tx, func(ctx context.Context, tx *Tx) error {
			expires := time.Now().Add(opts.ttl()).UnixMilli()
			if _, err := tx.Exec(ctx, t.claim, k, owner, expires); err != nil {
				if db.d.Classify(err).Class == dialect.ClassUniqueViolation {
					return errKeyTaken
				}
				return db.wrapErr(verb+": write key", err)
			}
			v, err := fn(ctx, tx)
			if err != nil {
				return err
			}
			enc, err := encodeOutcome(v)
			if err != nil {
				return inputError(verb, "store the result: %v", err)
			}
			if enc != nil {
				if _, err := tx.Exec(ctx, t.store, enc, k); err != nil {
					return db.wrapErr(verb+": store the result", err)
				}
			}
			out = v
			return nil
		})
		switch {
		case err == nil:
			db.once.sweepSometimes(ctx, db, t)
			return out, true, nil
		case errors.Is(err, errKeyTaken):
			stored, storedOwner, found, rerr := t.read(ctx, db, k)
			if rerr != nil {
				return result, false, joinUnknown(unknown, rerr)
			}
			if !found {
				continue // expired and swept since: claim it again
			}
			v, derr := decodeOutcome[T](stored)
			if derr != nil {
				return result, false, fmt.Errorf("racefree: %s: read the stored result of key %q: %w", verb, key, derr)
			}
			return v, storedOwner == owner, nil
		case errors.Is(err, ErrCommitUnknown):
			unknown = err
			// Running again is safe here, though not for RunInTx: the key
			// settles it. The policy bounds how often.
			delay, stop := policy.NextRetry(FailedAttempt{Attempt: attempt, Elapsed: time.Since(start), Class: dialect.ClassCommitUnknown, Err: err})
			if stop == nil && sleep(ctx, delay) == nil {
				continue
			}
			return result, false, err
		}
		return result, false, joinUnknown(unknown, err)
	}
}

// errKeyTaken: the key row exists: a run with the key committed.
var errKeyTaken = errors.New("racefree: run once: key already written")

// joinUnknown returns err, or, while an earlier attempt's COMMIT is
// unsettled, both: the caller must still treat the work as possibly done.
func joinUnknown(unknown, err error) error {
	if unknown == nil {
		return err
	}
	return errors.Join(unknown, fmt.Errorf("racefree: run once: settle the unknown commit: %w", err))
}

// onceKey is the key as stored: as given when it fits, its SHA-256
// otherwise.
func onceKey(key string) string {
	if len(key) <= onceKeyMax && utf8.ValidString(key) && !strings.ContainsRune(key, 0) && !strings.HasPrefix(key, "sha256:") {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newOwner names one RunOnce call, so that a call that finds its key
// written can tell its own earlier attempt from another call.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// encodeOutcome is the stored form of a result: nil for the zero value.
func encodeOutcome[T any](v T) ([]byte, error) {
	if reflect.ValueOf(&v).Elem().IsZero() {
		return nil, nil
	}
	return json.Marshal(v)
}

func decodeOutcome[T any](b []byte) (T, error) {
	var v T
	if len(b) == 0 {
		return v, nil
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// onceState is what a DB knows about RunOnce's key tables.
type onceState struct {
	tables sync.Map      // table name → *onceTable, made sure of
	mu     sync.Mutex    // serializes creating tables
	writes atomic.Uint64 // keys written, for sweeping
}

// onceTable is one key table's statements.
type onceTable struct {
	name, quoted             string
	claim, store, get, sweep string
}

// CreateOnceTable creates RunOnce's key table (OnceOptions.Table, or
// DefaultOnceTable when table is ""), unless it exists. RunOnce creates it
// on first use; call this at startup when the program's database user may
// not create tables at run time (then create it once as an
// administrator), or to keep the first call fast.
func CreateOnceTable(ctx context.Context, db *DB, table string) error {
	if db == nil || db.pool == nil {
		return errNilExecutor
	}
	_, err := db.onceTable(ctx, OnceOptions{Table: table}.table())
	return err
}

// onceTable returns the statements of key table name, creating the table
// the first time the DB uses it.
func (db *DB) onceTable(ctx context.Context, name string) (*onceTable, error) {
	if t, ok := db.once.tables.Load(name); ok {
		return t.(*onceTable), nil
	}
	const verb = "create key table"
	ot, ok := db.d.(dialect.OnceTabler)
	if !ok {
		return nil, fmt.Errorf("racefree: %s: %w: the %s dialect has no key table", verb, ErrUnsupported, db.d.Name())
	}
	quoted, err := db.d.Quote(name)
	if err != nil {
		return nil, invalidInput(verb, err)
	}
	base := name[strings.LastIndexByte(name, '.')+1:]
	index, err := db.d.QuoteIdent(base + "_expires")
	if err != nil {
		return nil, invalidInput(verb, err)
	}
	ph := db.d.Placeholder
	t := &onceTable{name: name, quoted: quoted,
		claim: "INSERT INTO " + quoted + " (k, owner, expires) VALUES (" + ph(1) + ", " + ph(2) + ", " + ph(3) + ")",
		store: "UPDATE " + quoted + " SET result = " + ph(1) + " WHERE k = " + ph(2),
		get:   "SELECT owner, result FROM " + quoted + " WHERE k = " + ph(1),
		sweep: ot.SweepOnceSQL(quoted, onceSweepLimit),
	}
	db.once.mu.Lock()
	defer db.once.mu.Unlock()
	if t, ok := db.once.tables.Load(name); ok {
		return t.(*onceTable), nil
	}
	var createErr error
	for _, stmt := range ot.CreateOnceTableSQL(quoted, index) {
		create := func(ctx context.Context) error {
			_, err := db.pool.Exec(ctx, stmt)
			return err
		}
		err := db.retryIdempotent(ctx, create(ctx), create)
		if err != nil && db.d.Classify(err).Class != dialect.ClassUniqueViolation {
			// Two sessions creating it at once collide on PostgreSQL's
			// catalog; a user without the right to create may find it
			// made already. Either way, the table decides.
			createErr = err
			break
		}
	}
	if createErr != nil {
		if _, _, _, err := t.read(ctx, db, ""); err != nil {
			return nil, db.wrapErr(verb+" "+name, createErr)
		}
	}
	db.once.tables.Store(name, t)
	return t, nil
}

// read returns the stored result and owner of key k, and whether the key
// is there, retrying a lost connection.
func (t *onceTable) read(ctx context.Context, db *DB, k string) (result []byte, owner string, found bool, err error) {
	get := func(ctx context.Context) error {
		err := db.pool.QueryRow(ctx, t.get, k).Scan(&owner, &result)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		found = err == nil
		return err
	}
	err = db.retryIdempotent(ctx, get(ctx), get)
	if err != nil {
		return nil, "", false, db.wrapErr("run once: read key", err)
	}
	return result, owner, found, nil
}

// sweepSometimes deletes expired keys after every onceSweepEvery keys
// written. It is housekeeping: its failure fails no call, and the next
// sweep, or SweepOnce, does the work.
func (s *onceState) sweepSometimes(ctx context.Context, db *DB, t *onceTable) {
	if s.writes.Add(1)%onceSweepEvery != 0 {
		return
	}
	_, _ = db.pool.Exec(ctx, t.sweep, time.Now().UnixMilli())
}

// SweepOnce deletes the expired keys of RunOnce's key table (table, or
// DefaultOnceTable when ""), up to 1,024 per statement until none is left,
// and returns how many it deleted. RunOnce sweeps on its own as it writes
// keys; call this to empty the table of a program that has stopped
// writing them.
func SweepOnce(ctx context.Context, db *DB, table string) (int64, error) {
	if db == nil || db.pool == nil {
		return 0, errNilExecutor
	}
	t, err := db.onceTable(ctx, OnceOptions{Table: table}.table())
	if err != nil {
		return 0, err
	}
	var total int64
	now := time.Now().UnixMilli()
	for {
		res, err := db.pool.Exec(ctx, t.sweep, now)
		if err != nil {
			return total, db.wrapErr("sweep keys", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, db.wrapErr("sweep keys", err)
		}
		total += n
		if n < onceSweepLimit {
			return total, nil
		}
	}
}
