package racefree

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// transferTarget names where Transfer moves amounts: the value column of
// a table, one row per key.
type transferTarget struct {
	Table, Key, Column string
}

// TransferOptions configure Transfer. The zero value keys rows by column
// "id", has a floor of 0 and retries as Backoff{} does.
type TransferOptions struct {
	// KeyColumn is the column whose value names one row: a unique index
	// must cover exactly it (the primary key, best). "" means "id".
	KeyColumn string
	// Floor is the least value the debited row may be left with: an
	// integer or a decimal string, as the amount, and may be negative (an
	// overdraft limit). nil means 0.
	Floor any
	// Retry decides whether and when a transfer on a *DB or *Conn runs
	// again after a deadlock, a serialization failure or SQLite's busy
	// error; nil is Backoff{}. A transfer inside a *Tx is never retried
	// on its own: the error dooms the caller's transaction, whose RunInTx
	// retries it whole.
	Retry RetryPolicy
	// Alone runs the transfer in a transaction of its own. Otherwise, on
	// a *DB whose engine commits slowly next to a statement (PostgreSQL),
	// a transfer that finds one of its rows busy with another transfer of
	// this process waits, and those that waited share one transaction and
	// one commit; each keeps its own outcome (see docs/transfer.md, "Shared
	// commits").
	Alone bool
}

// Errors of a transfer that moved nothing, for errors.Is; the error is a
// *TransferError.
var (
	// ErrBelowFloor: the debited row's value minus the amount would be
	// below the floor. Both rows are unchanged.
	ErrBelowFloor = errors.New("racefree: would go below the floor")
	// ErrNoRow: a key names no row. Both rows are unchanged.
	ErrNoRow = errors.New("racefree: no such row")
)

// TransferError is the error of a transfer that moved nothing because the
// floor declined it or a row is missing. It matches ErrNoRow when Missing
// is not empty, and ErrBelowFloor otherwise.
type TransferError struct {
	Table string
	// From, To, Amount and Floor are the transfer's, as racefree bound
	// them (int64, a decimal string, or the key column's driver value).
	From, To, Amount, Floor any
	// Missing lists the keys that named no row, From first.
	Missing []any
}

func (e *TransferError) Error() string {
	if len(e.Missing) > 0 {
		keys := make([]string, len(e.Missing))
		for i, k := range e.Missing {
			keys[i] = fmt.Sprint(k)
		}
		return fmt.Sprintf("racefree: transfer %v from %v to %v in %s: no row with key %s", e.Amount, e.From, e.To, e.Table, strings.Join(keys, " or "))
	}
	return fmt.Sprintf("racefree: transfer %v from %v to %v in %s: would leave row %v below the floor %v", e.Amount, e.From, e.To, e.Table, e.From, e.Floor)
}

// Is matches ErrNoRow or ErrBelowFloor.
func (e *TransferError) Is(target error) bool {
	if len(e.Missing) > 0 {
		return target == ErrNoRow
	}
	return target == ErrBelowFloor
}

// Transfer moves amount from one row of table to another — from the row
// whose key (opts.KeyColumn, "id" by default) is from to the row whose key
// is to — in the numeric column, unless that would leave the first below
// the floor (opts.Floor, 0 by default): both rows change, or neither does.
// Account balances, stock levels, quotas.
//
//	err := racefree.Transfer(ctx, db, "accounts", "balance", from, to, 250, racefree.TransferOptions{})
//	switch {
//	case errors.Is(err, racefree.ErrBelowFloor): // declined: not enough money
//	case errors.Is(err, racefree.ErrNoRow):      // no such account
//	case err != nil:                             // a database error
//	}
//
// amount is an integer greater than zero (of any Go integer type, best
// the minor unit: cents, items) or a decimal string such as "12.50", for
// a NUMERIC/DECIMAL column; floats are refused, since they cannot hold
// most decimal amounts exactly. A decimal must fit the column: a fraction
// is refused for an integer column, and more decimal places than a
// DECIMAL(p,s) column keeps, which would be rounded. SQLite has no exact
// decimal type: it computes fractions in floating point, so keep integer
// minor units there.
//
// Where the engine allows, a transfer is one statement, one round trip,
// that locks the two rows in key order — so transfers A→B and B→A cannot
// deadlock each other — and checks the floor on the debited row's latest
// value under that lock, so that no concurrent transfer can overdraw it
// (PostgreSQL: a data-modifying WITH; MySQL/MariaDB: a multi-table UPDATE;
// SQLite: one UPDATE under its single writer). Elsewhere it is a
// transaction that locks both rows in key order, then debits with the
// floor checked and credits. docs/transfer.md
// shows every statement and the guarantee per engine and isolation level.
//
// ex may be a *DB, a *Conn or a *Tx. On a *DB or *Conn the transfer
// commits on its own and is retried on deadlocks, serialization failures
// and SQLite's busy errors within opts' budget (a *RetryError when it is
// spent); a statement whose answer was lost (the connection broke or ctx
// ended while it ran) returns a *CommitUnknownError: it may have moved
// the amount. Inside a *Tx it is neither committed nor retried; a
// declined transfer changes nothing and leaves the transaction usable,
// while a failed statement (a deadlock, a constraint of yours) aborts it on
// PostgreSQL, as any failed statement there does.
//
// A transfer that moved nothing returns a *TransferError matching
// ErrBelowFloor or ErrNoRow. Bad input — invalid names, a table without a
// unique index on exactly the key column, a value column that is not a
// NOT NULL number, a nil or equal key, an amount that is not positive —
// returns an error matching ErrInvalidInput that names every problem,
// with nothing written. ctx governs the statements and the pauses between
// retries.
func Transfer(ctx context.Context, ex Executor, table, column string, from, to, amount any, opts TransferOptions) error {
	const verb = "transfer"
	b := transferTarget{Table: table, Key: opts.KeyColumn, Column: column}
	h, err := handleOf(ex)
	if err != nil {
		return fmt.Errorf("racefree: %s: %w", verb, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("racefree: %s: %w", verb, dialect.Wrap(dialect.ClassCanceled, err))
	}
	t, err := h.db.transferPlan(ctx, h, b, from, to, amount, opts.Floor)
	if err != nil {
		return err
	}
	var r dialect.TransferResult
	switch {
	case h.tx != nil:
		r, err = h.tx.transfer(ctx, t)
	default:
		if l := h.lane(b, t, opts); l != nil {
			r, err = h.transferSharing(ctx, l, t, opts)
		} else {
			r, err = h.transferAutocommit(ctx, t, opts)
		}
	}
	if err != nil {
		return err
	}
	return transferOutcome(b.Table, t, r)
}

// transferOutcome turns what the statements found into Transfer's error.
func transferOutcome(table string, t dialect.Transfer, r dialect.TransferResult) error {
	switch {
	case r.Moved:
		return nil
	case r.FromFound && r.ToFound && r.Rows < 2:
		return inputError("transfer", "keys %v and %v name the same row of %s (the key column's collation takes them as equal)", t.From, t.To, table)
	}
	e := &TransferError{Table: table, From: t.From, To: t.To, Amount: t.Amount, Floor: t.Floor}
	if !r.FromFound {
		e.Missing = append(e.Missing, t.From)
	}
	if !r.ToFound {
		e.Missing = append(e.Missing, t.To)
	}
	return e
}

// transferAutocommit runs a transfer on a pool or a connection: the
// dialect's statement, retried, or the fallback transaction.
func (h handle) transferAutocommit(ctx context.Context, t dialect.Transfer, opts TransferOptions) (dialect.TransferResult, error) {
	txOpts := TxOptions{Retry: opts.Retry}
	tr, ok := h.db.d.(dialect.Transferer)
	if !ok {
		return h.transferFallback(ctx, t, txOpts)
	}
	q := h.q
	if h.onPool() {
		q = h.db.transferQuerier()
	}
	var r dialect.TransferResult
	unsupported, queued := false, false
	gated := h.db.gated()
	err := h.db.retry(ctx, opts.Retry, func(ctx context.Context) error {
		if gated {
			if err := h.db.writers.enter(ctx); err != nil {
				queued = true // ctx ended in the queue: nothing was sent
				return dialect.Wrap(dialect.ClassCanceled, err)
			}
			defer h.db.writers.leave()
		}
		var err error
		r, err = tr.Transfer(ctx, q, t)
		switch {
		case errors.Is(err, dialect.ErrTransferUnsupported):
			unsupported = true
			return nil
		case err != nil:
			// Classified, so that the retry policy sees ErrDeadlock and the like,
			// as RunInTx's does.
			return classifyTransparent(h.db.d, err)
		}
		return nil
	})
	if unsupported {
		return h.transferFallback(ctx, t, txOpts)
	}
	if err == nil {
		return r, nil
	}
	if errors.As(err, new(*RetryError)) {
		return r, err
	}
	ce := h.db.d.Classify(err)
	if !queued && (ce.Class == dialect.ClassConnection || ce.Class == dialect.ClassCanceled) {
		// The statement commits by itself: its answer, not its effect, is
		// what was lost.
		h.db.observe(ctx, Event{Kind: EventCommitUnknown, Class: dialect.ClassCommitUnknown, Err: ce})
		return r, &CommitUnknownError{Err: ce}
	}
	return r, transferErr(h.db, err)
}

// transfer runs a transfer inside the caller's transaction: the dialect's
// statement, or the fallback's statements in a savepoint, which undoes a
// credit that went first when the debit is then declined. The dialect's
// statement needs no savepoint: a declined transfer is not a failed
// statement, and the errors it can fail with (a deadlock, a serialization
// failure, a constraint of the caller's) end the caller's transaction on
// PostgreSQL as any failed statement of theirs would — a savepoint would
// cost two round trips to keep alive a transaction that must be retried
// anyway.
func (tx *Tx) transfer(ctx context.Context, t dialect.Transfer) (dialect.TransferResult, error) {
	t.InTx = true
	var r dialect.TransferResult
	if tr, ok := tx.db.d.(dialect.Transferer); ok {
		var err error
		r, err = tr.Transfer(ctx, tx.transferQuerier(), t)
		if !errors.Is(err, dialect.ErrTransferUnsupported) {
			if err != nil {
				return r, transferErr(tx.db, err)
			}
			return r, nil
		}
	}
	err := tx.savepoint(ctx, func(ctx context.Context) error {
		var err error
		r, err = transferStatements(ctx, tx, t)
		return err
	})
	if errors.Is(err, errNotMoved) {
		return r, nil
	}
	if err != nil {
		return r, transferErr(tx.db, err)
	}
	return r, nil
}

// transferErr classifies a failed transfer statement's error and wraps
// it.
func transferErr(db *DB, err error) error {
	return fmt.Errorf("racefree: transfer: %w", db.d.Classify(err))
}
