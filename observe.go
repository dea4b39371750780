package racefree

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/internal/lockkey"
)

// Observer receives racefree's events: transaction attempts and retries,
// lost races, lock waits and hold times, lost leases and commits of
// unknown outcome. Set one with WithObserver when opening the DB;
// SlogObserver writes them to a log/slog logger, and module
// github.com/racefree/racefree/otelrf turns them into OpenTelemetry
// metrics and span events.
//
// Observe is called synchronously on the goroutine of the operation, with
// the operation's context (so an observer can find the active span); it
// must be quick, must not block, and must be safe for concurrent use. The
// event is a value: keep a copy, not a pointer. With no observer set, an
// operation pays one nil check per event and allocates nothing.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// EventKind says what an Event reports.
type EventKind uint8

// The events.
const (
	// EventTxRetry: an attempt failed with a retryable error and will run
	// again after Delay, as the RetryPolicy decided — a transaction
	// (RunInTx, the transaction a strategy runs in, RunOnce's), or a call
	// that retries on its own (a get-or-create on the pool, Transfer,
	// Unlink). Attempt is the failed attempt's number, from 1; Class and
	// Err its error.
	EventTxRetry EventKind = iota + 1
	// EventTxGaveUp: retrying stopped: the policy said so (a budget
	// spent) or the context ended. Attempt, Class and Err are the last
	// attempt's.
	EventTxGaveUp
	// EventLostRace: a get-or-create family call lost the race to create a
	// row and returned the winner's. Table and Verb name the call;
	// Constraint the index that reported the conflict, when the engine
	// named one.
	EventLostRace
	// EventLockAcquired: a lock was granted after Wait. Lock names it (a
	// label of at most 64 bytes, not a key for metrics: names are
	// unbounded) and LockKind says which kind ("named", "session", "rows",
	// "table", "lease").
	EventLockAcquired
	// EventLockNotAcquired: a lock was not granted (Try, or a timeout)
	// after Wait.
	EventLockNotAcquired
	// EventLockReleased: a session lock or a lease held for Held was
	// released. Locks that belong to a transaction (LockNamed, LockRows,
	// LockTable) end with it and send no such event.
	EventLockReleased
	// EventLeaseLost: a lease was found lost (another holder took it, or
	// its session ended).
	EventLeaseLost
	// EventCommitUnknown: a COMMIT's outcome is unknown (Err says why).
	EventCommitUnknown
	// EventSharedCommit: Transfers transfers on a *DB that had queued
	// on Table ran together — behind busy rows in one shared
	// transaction, under load on distinct rows in one combined statement
	// — which took Held. With Err nil it committed them all; with Err set
	// it failed, committed nothing, and each transfer then ran alone.
	EventSharedCommit
)

var eventNames = [...]string{
	EventTxRetry:         "tx retry",
	EventTxGaveUp:        "tx gave up",
	EventLostRace:        "lost race",
	EventLockAcquired:    "lock acquired",
	EventLockNotAcquired: "lock not acquired",
	EventLockReleased:    "lock released",
	EventLeaseLost:       "lease lost",
	EventCommitUnknown:   "commit unknown",
	EventSharedCommit:    "shared commit",
}

// String names the kind in a few words, for example "tx retry".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown event"
}

// Event is one thing racefree observed. Fields that do not apply to the
// kind are zero.
type Event struct {
	Kind EventKind
	// Engine is the dialect's Name ("postgres", "mysql", "sqlite"): a
	// bounded label.
	Engine string
	// Table and Verb name a get-or-create family call ("get or create").
	Table, Verb string
	// Constraint is the index a lost race's conflict was reported on.
	Constraint string
	// Lock is a lock's name (a label, truncated); LockKind its kind.
	Lock, LockKind string
	// Attempt is a transaction attempt's number, from 1.
	Attempt int
	// Class is the error's class, Err the error.
	Class dialect.Class
	Err   error
	// Delay is the pause before the next attempt; Wait how long a lock
	// was waited for; Held how long it was held, or a shared
	// transaction took.
	Delay, Wait, Held time.Duration
	// Transfers is how many transfers a shared transaction ran.
	Transfers int
}

// observe sends e to the DB's observer, if it has one.
func (db *DB) observe(ctx context.Context, e Event) {
	if db.observer == nil {
		return
	}
	e.Engine = db.d.Name()
	db.observer.Observe(ctx, e)
}

// observeLostRace reports that c lost a race, the conflict reported on
// violation's index when the engine raised one.
func (c *call) observeLostRace(ctx context.Context, violation *dialect.Error) {
	c.db.lostRaces.Add(1)
	if c.db.observer == nil {
		return
	}
	e := Event{Kind: EventLostRace, Table: c.t.Name, Verb: strings.TrimSuffix(c.verb, " "+c.t.Name)}
	if violation != nil {
		e.Constraint = violation.Constraint
	}
	c.db.observe(ctx, e)
}

// Lock kinds, for Event.LockKind.
const (
	lockKindNamed   = "named"
	lockKindSession = "session"
	lockKindRows    = "rows"
	lockKindTable   = "table"
	lockKindLease   = "lease"
)

// observeLock reports the outcome of a lock wait that began at start: an
// acquired lock, or one not acquired (Try, timeout). Other errors are not
// lock events.
func (db *DB) observeLock(ctx context.Context, kind, name string, start time.Time, err error) {
	if db.observer == nil {
		return
	}
	e := Event{Kind: EventLockAcquired, Lock: lockkey.Label(name, 64), LockKind: kind, Wait: time.Since(start)}
	if err != nil {
		if !errors.Is(err, ErrLockNotAcquired) {
			return
		}
		e.Kind, e.Err, e.Class = EventLockNotAcquired, err, dialect.ClassOf(db.d, err)
	}
	db.observe(ctx, e)
}

// observeRelease reports that a lock acquired at acquired was released.
func (db *DB) observeRelease(ctx context.Context, kind, name string, acquired time.Time) {
	if db.observer == nil {
		return
	}
	db.observe(ctx, Event{Kind: EventLockReleased, Lock: lockkey.Label(name, 64), LockKind: kind, Held: time.Since(acquired)})
}
