package racefree

import (
	"context"
	"fmt"
	"slices"

	"github.com/racefree/racefree/dialect"
)

// batchMode is how this batch inserts, in tx (nil outside one).
func (c *call) batchMode(tx *Tx) insertMode {
	f := c.d.Features()
	switch {
	case f.Has(dialect.OnConflict) && c.ix != nil && !f.Has(dialect.SingleWriter) && !c.snapshotBlind(tx):
		// ON CONFLICT on the lookup's index: a conflict on another index
		// fails the whole statement, which keeps a one-statement batch
		// all or none without a transaction.
		return insertOnConflict
	case f.Has(dialect.OnConflict):
		// ON CONFLICT on any index: SQLite, whose batches always run in a
		// transaction; a PostgreSQL snapshot that cannot see concurrent
		// winners, where only this form makes the engine report one it
		// cannot see (a serialization failure) rather than a violation of
		// another index; no covering index (the lock strategy).
		return insertOnConflictAny
	case c.strat == StrategyConstraint && f.Has(dialect.OnDuplicateKey|dialect.Returning) && c.ignoreChecker() != nil:
		// MariaDB: without IGNORE one existing key fails the whole
		// statement, and contention would cost a round of statements per
		// conflict instead of one re-read.
		return insertIgnore
	}
	return insertPlain
}

// writeMissing inserts the keys at pos (in canonical order) and settles
// each: created, or found after a lost race. tx is the transaction the
// batch runs in, the caller's or the strategy's own, or nil outside any.
// The writes are all or none: where one statement cannot do that (more
// than one chunk; IGNORE, which must be undone when it altered a value;
// SQLite, whose one transaction also saves a commit per chunk) they run
// in a transaction of their own, or in a savepoint of the caller's.
func writeMissing[T any](ctx context.Context, b *batch, tx *Tx, pos []int, res *batchRows[T]) error {
	c := b.call
	if err := c.checkInsert(); err != nil {
		return err
	}
	if b.lazy {
		// Only the keys to be created compute their Lazy defaults, each
		// once for the call: the values replace the Lazy in place.
		for _, j := range pos {
			if err := c.resolveLazy(ctx, c.icols, b.keys[j].ivals); err != nil {
				return err
			}
		}
		b.lazy = false
	}
	res.writing = true
	mode := c.batchMode(tx)
	// Undo is needed when the batch may write some rows and then fail:
	// more than one statement, or a statement that skips some rows
	// (IGNORE, ON CONFLICT on any index) before a plain INSERT of the
	// skipped ones reports what they collide with.
	undo := len(c.chunks(pos, len(c.icols))) > 1 || mode == insertIgnore || mode == insertOnConflictAny
	switch {
	case tx != nil && tx == c.h.tx && undo:
		return tx.savepoint(ctx, func(ctx context.Context) error {
			return settle(ctx, b, tx.tx, tx, pos, mode, res)
		})
	case tx != nil:
		return settle(ctx, b, tx.tx, tx, pos, mode, res)
	case undo || c.d.Features().Has(dialect.SingleWriter):
		// READ COMMITTED (see call.inTx): no gap locks, and a re-read sees
		// the winner's row. On SQLite an IMMEDIATE transaction.
		c.prepareInserts(ctx, pos, mode)
		return c.inTx(ctx, func(ctx context.Context, tx *Tx) error {
			res.forget(pos) // a retried transaction starts over
			return settle(ctx, b, tx.tx, tx, pos, mode, res)
		})
	}
	// One statement, atomic by itself: each may run on its own, and the
	// whole can run again after a deadlock or SQLITE_BUSY, keeping what
	// earlier attempts committed.
	return c.db.retry(ctx, c.opts.Retry, func(ctx context.Context) error {
		return settle(ctx, b, c.h.q, nil, res.unknown(slices.Clone(pos)), mode, res)
	})
}

// settle inserts the keys at pos and re-reads those lost to another
// writer, looping while rows vanish before they can be read. Only turns
// that settle no key count against the bound.
func settle[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, mode insertMode, res *batchRows[T]) error {
	c := b.call
	missing := slices.Clone(pos)
	for stalls := 0; stalls < maxVanished; {
		before := len(missing)
		if h := testHookBeforeInsert.Load(); h != nil {
			(*h)()
		}
		lost, violation, err := batchInsert(ctx, b, q, tx, missing, mode, res)
		if err != nil {
			return err
		}
		if mode == insertIgnore || mode == insertOnConflictAny {
			// A key IGNORE or ON CONFLICT DO NOTHING skipped that the
			// re-read below does not find conflicts with something else
			// (another row on another unique index, a foreign key) or
			// vanished: insert it plainly, so that the first case fails
			// with the server's own error.
			mode = insertPlain
		}
		missing = res.unknown(missing)
		if len(missing) == 0 {
			return nil
		}
		if lost {
			if h := testHookBeforeReread.Load(); h != nil {
				(*h)()
			}
			lostBefore := len(missing)
			if err := batchRead(ctx, b, q, tx, missing, c.rereadLock(tx), res); err != nil {
				return err
			}
			missing = res.unknown(missing)
			if len(missing) > 0 && res.unmatched > 0 {
				// The re-read returned rows that match no key as Go
				// compares them: the engine equated values Go tells apart
				// (a case-insensitive collation, trailing spaces, type
				// coercion). Read the keys still missing one by one, so
				// that the engine matches each to its row.
				if err := readEach(ctx, b, q, tx, missing, c.rereadLock(tx), res); err != nil {
					return err
				}
				missing = res.unknown(missing)
			}
			for range lostBefore - len(missing) { // keys found after losing the race
				c.observeLostRace(ctx, violation)
			}

			if len(missing) == 0 {
				return nil
			}
			switch {
			case violation == nil, len(missing) < before:
				// Skipped rows (see batchMode: in a snapshot that cannot
				// see a winner the engine reports a serialization failure
				// instead), or progress: go round.
			case !c.ownIndex(violation):
				// The statement collided with another row on another
				// unique index, not with a lookup's row: see createOrFind.
				return fmt.Errorf("racefree: %s: %w", c.verb, violation)
			case c.snapshotBlind(tx):
				return c.errSnapshotBlind()
			}
		}
		if len(missing) == before {
			stalls++
		}
	}
	return fmt.Errorf("racefree: %s: %w (%d attempts)", c.verb, ErrRowVanished, maxVanished)
}

// batchInsert inserts the keys at pos, storing returned rows as created.
// Its errors are wrapped and classified. lost reports that some key was
// not inserted because a unique index refused it (or, with IGNORE, for
// any reason): the caller re-reads. violation is the last unique
// violation a statement failed with, when one did.
func batchInsert[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, mode insertMode, res *batchRows[T]) (lost bool, violation *dialect.Error, err error) {
	c := b.call
	returning := c.d.Features().Has(dialect.Returning)
	for _, part := range c.chunks(pos, len(c.icols)) {
		query, args := c.batchInsertSQL(b, part, mode)
		full := c.fullChunk(len(part), len(c.icols))
		do := func(ctx context.Context) error {
			if returning {
				return insertReturning(ctx, b, q, tx, query, full, args, part, mode, res)
			}
			return insertThenRead(ctx, b, q, tx, query, args, part, res)
		}
		if tx != nil && c.d.Features().Has(dialect.FailedStatementAbortsTx) {
			// The INSERT may fail (another unique index), and the
			// re-read must still run in the transaction.
			err = tx.savepoint(ctx, do)
		} else {
			err = do(ctx)
		}
		if err != nil {
			if ce := c.db.Classify(err); ce.Class == dialect.ClassUniqueViolation {
				lost, violation = true, ce // the whole statement failed; the caller re-reads
				continue
			}
			return false, nil, err
		}
		for _, j := range part {
			if !res.known[j] {
				lost = true
			}
		}
	}
	return lost, violation, nil
}

// insertReturning runs an INSERT … RETURNING and stores its rows as
// created. If the statement fails after some rows arrived (MariaDB streams
// them as it inserts, and a duplicate key further on rolls the whole
// statement back), those rows are forgotten.
func insertReturning[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, query string, full bool, args []any, part []int, mode insertMode, res *batchRows[T]) error {
	c := b.call
	rs, done, err := c.batchQuery(ctx, q, tx, query, full, args)
	if err != nil {
		return c.db.wrapErr(c.verb, err)
	}
	n, set, err := scanBatch(b, rs, res, true)
	done()
	if err == nil && mode == insertIgnore {
		err = c.checkIgnored(ctx, q, len(part), n)
	}
	if err != nil {
		res.forget(set)
	}
	return err
}

// insertThenRead is MySQL without RETURNING: the statement inserted every
// row of part or none; the rows read back are the ones it made, visible
// to this session in or out of a transaction.
func insertThenRead[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, query string, args []any, part []int, res *batchRows[T]) error {
	if _, err := q.Exec(ctx, query, args...); err != nil {
		return b.call.db.wrapErr(b.call.verb, err)
	}
	if err := batchRead(ctx, b, q, tx, part, "", res); err != nil {
		return err
	}
	for _, j := range part {
		res.created[j] = res.known[j]
	}
	return nil
}

// readEach reads the rows of the keys at pos one statement each, for rows
// a batch read could not match to their keys (see settle).
func readEach[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, lock string, res *batchRows[T]) error {
	for _, j := range pos {
		ko := *b.call
		ko.lvals, ko.p, ko.null = b.keys[j].lvals, nil, slices.Contains(b.keys[j].lvals, nil)
		row, found, err := readRow[T](ctx, &ko, q, lock)
		if err != nil {
			return err
		}
		if found {
			res.row[j], res.known[j] = row, true
		}
	}
	return nil
}

// ignoreChecker is the dialect's check of what INSERT IGNORE skipped, or
// nil: a batch uses IGNORE only where it can tell a skipped row from a
// value stored altered (see dialect.IgnoreChecker).
func (c *call) ignoreChecker() dialect.IgnoreChecker {
	ic, _ := c.d.(dialect.IgnoreChecker)
	return ic
}

// checkIgnored fails when the INSERT IGNORE just run on q, which sent rows
// and got returned rows back, stored some value altered. q must be the
// same session: a transaction or savepoint, which the caller rolls back.
func (c *call) checkIgnored(ctx context.Context, q dialect.Querier, sent, returned int) error {
	altered, err := c.ignoreChecker().CheckIgnored(ctx, q, sent, returned)
	if err != nil {
		return c.db.wrapErr(c.verb, err)
	}
	if altered == "" {
		return nil
	}
	return inputError(c.verb, "%d of %d rows were skipped, but the server would have stored a value altered (%s); the batch was rolled back",
		sent-returned, sent, altered)
}
