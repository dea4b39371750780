package racefree

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Item is one input of GetOrCreateMany: the lookup that identifies the row
// and the defaults it is created with.
type Item struct {
	// Lookup names the row, as GetOrCreate's lookup does.
	Lookup Values
	// Defaults are the values the row is created with, besides the
	// lookup's.
	Defaults Values
}

// ItemResult is one output of GetOrCreateMany, for the Item at the same
// index.
type ItemResult[T any] struct {
	// Row is the row the item's lookup names.
	Row T
	// Created reports whether this call created it.
	Created bool
}

// GetOrCreateMany is GetOrCreate for many lookups in one call. It returns
// one ItemResult per item, in input order. Items with the same lookup get the
// same row; the first of them is the one created, with its defaults, and
// only it reports Created. Rows that already existed are returned too, on
// every engine.
//
// Every item must name the same lookup columns and the same default
// columns. Bad input anywhere in the batch is refused before anything is
// written, and the rows a batch creates are written all or none: outside
// a transaction its INSERTs run in one transaction of their own when there
// is more than one of them, and always on MariaDB and SQLite; inside yours
// they run in a savepoint when there is more than one, and always on
// PostgreSQL (so that a failed INSERT does not abort your transaction) and
// MariaDB.
//
// # Round trips
//
// With the constraint strategy the batch reads first: one SELECT, the
// whole cost when every row exists. The missing keys are then inserted in
// one canonical order, so that concurrent batches with overlapping keys
// cannot deadlock on each other. Whatever the contention, for a batch
// whose INSERT fits in one statement of at most 30,000 bound values
// (15,000 keys of one lookup column and one default; a larger batch takes
// such a round per statement, in one transaction):
//
//   - PostgreSQL: SELECT, INSERT … ON CONFLICT DO NOTHING RETURNING, and
//     if another writer won some keys meanwhile one SELECT of them: 3 round
//     trips at most; in your transaction 2 more (SAVEPOINT, RELEASE).
//   - MariaDB: SELECT, SET TRANSACTION ISOLATION LEVEL READ COMMITTED,
//     START TRANSACTION, INSERT IGNORE … RETURNING, SELECT @@warning_count,
//     the SELECT of the keys lost, COMMIT: 7 at most (measured under
//     contention from 4 processes); in your transaction SAVEPOINT and
//     RELEASE replace the three transaction statements. IGNORE skips the
//     rows that exist, so RETURNING gives back exactly the rows created and
//     one existing key no longer fails the statement. IGNORE would also
//     store, altered and with a warning, a value the column cannot hold
//     (too long, out of range, a bad date): every skipped row leaves one
//     warning, so a warning more than the rows skipped rolls the batch
//     back, and it fails with ErrInvalidInput naming the server's warning.
//   - MySQL: not constant under contention. Without RETURNING an INSERT
//     IGNORE cannot tell which rows it created (LAST_INSERT_ID names only
//     the first, and skipped rows leave gaps), so the batch runs a plain
//     multi-row INSERT and reads the rows back: 3 round trips without
//     contention, but one key created by another writer meanwhile fails
//     the whole INSERT, and then the rows that now exist are read and the
//     rest inserted again, a round per conflict, each making progress.
//   - SQLite: no round trips (it runs in-process). In one IMMEDIATE
//     transaction, INSERT … ON CONFLICT DO NOTHING RETURNING in statements
//     of at most 256 bound values, each prepared once per DB: the Go
//     driver binds arguments in time quadratic in their number. The engine
//     is the floor: the bare INSERTs of 1,000 rows are about 13 times
//     faster than 1,000 GetOrCreate calls (BenchmarkGetOrCreateManyFloor).
//
// Beyond that, only in rare cases, statements are added a bounded number
// of times: a key whose row was deleted between the conflict and the
// re-read is inserted again; on MariaDB a key that IGNORE skipped and the
// re-read did not find either conflicts with something else (another
// unique index, a foreign key) and is inserted again without IGNORE, so
// that the violation is returned as it is (another unique index's matches
// ErrUniqueViolation); a deadlock or SQLITE_BUSY retries the transaction
// (see RunInTx).
//
// The lock strategy takes one named lock per distinct lookup, in canonical
// order, inside one transaction (a round trip each), then reads and
// inserts (a plain INSERT … RETURNING on MariaDB: nobody else inserts these
// keys); the serializable strategy runs the same statements in one
// SERIALIZABLE transaction. The guarantees, recovery rules and errors are
// GetOrCreate's.
//
// On a *DB a batch whose statement lost its connection, or whose COMMIT's
// answer was lost, runs again: it reads what the lost attempt committed
// and creates the rest. Every row is then right; when a row the lost
// attempt may have created is found by the next, whether this call
// created it is unknown, and the results come back complete (Created
// false for such rows) with a *CreatedUnknownError matching
// ErrCreatedUnknown.
func GetOrCreateMany[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) ([]ItemResult[T], error) {
	if len(items) == 0 {
		return nil, nil
	}
	b, err := planBatch[T](ctx, ex, table, items, opts)
	if err != nil {
		return nil, err
	}
	c := b.call
	res := newBatchRows[T](len(b.keys))
	run := func(ctx context.Context) error {
		if c.strat == StrategyConstraint {
			return constraintBatch(ctx, b, res)
		}
		return c.inTx(ctx, func(ctx context.Context, tx *Tx) error {
			if c.strat == StrategyLock {
				order := slices.Clone(b.keys)
				slices.SortFunc(order, func(x, y batchKey) int { return strings.Compare(x.key, y.key) })
				for _, k := range order {
					ko := *c
					ko.lvals = k.lvals
					if err := lockForGetOrCreate(ctx, tx, ko.lockName()); err != nil {
						return err
					}
				}
			}
			res.reset()
			// The read after the lock must see the previous holder's row,
			// which a MySQL REPEATABLE READ snapshot taken before may not.
			missing, err := readMissing(ctx, b, tx.tx, tx, res.all(), c.rereadLock(tx), res)
			if err != nil || len(missing) == 0 {
				return err
			}
			return writeMissing(ctx, b, tx, missing, res)
		})
	}
	start := time.Now()
	err = run(ctx)
	var lost batchRecovery
	if err != nil && c.h.onPool() {
		// A batch is idempotent: run again after a lost connection or an
		// unknown COMMIT, it reads what the lost attempt committed and
		// inserts the rest. What it can say about Created is below.
		err = c.db.retryAfter(ctx, c.opts.Retry, start, lost.note(c, res, err), func(ctx context.Context) error {
			res.reset()
			return lost.note(c, res, run(ctx))
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]ItemResult[T], len(items))
	for i, j := range b.of {
		out[i].Row = res.row[j]
		out[i].Created = res.created[j] && b.keys[j].first == i
	}
	if lost.doubt != nil && slices.ContainsFunc(lost.keys, func(j int) bool { return !res.created[j] }) {
		// Some row the lost attempt may have created was found by the
		// next: every row is right, but not every Created.
		return out, &CreatedUnknownError{Verb: c.verb, Table: c.t.Name, Err: lost.doubt}
	}
	return out, nil
}
