package pgdialect

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.Transferer = (*Dialect)(nil)

// codeDivisionByZero is what the transfer statement's guard raises when
// the debit changed a row and the credit did not (see transferSQL).
const codeDivisionByZero = "22012"

// Transfer is one statement, one round trip, built by transferSQL.
// CockroachDB refuses two modifications of one table in one statement, so
// there the root's transaction runs instead.
func (d *Dialect) Transfer(ctx context.Context, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	if d.cockroachDB {
		return dialect.TransferResult{}, dialect.ErrTransferUnsupported
	}
	var rows, fromFound, toFound, moved int64
	err := q.QueryRow(ctx, transferSQL(t), t.From, t.To, t.Amount, t.Floor).Scan(&rows, &fromFound, &toFound, &moved)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeDivisionByZero {
		return dialect.TransferResult{}, fmt.Errorf("pgdialect: transfer: the debit changed a row and the credit none (does a trigger or rule skip the credited row?); the statement failed and changed nothing: %w", err)
	}
	if err != nil {
		return dialect.TransferResult{}, err
	}
	return dialect.TransferResult{Moved: moved == 1, Rows: int(rows), FromFound: fromFound > 0, ToFound: toFound > 0}, nil
}

// transferSQL is the transfer as one data-modifying statement:
//
//   - racefree_locked locks both rows in key order (the LockRows node sits
//     above the Sort) and, at READ COMMITTED, reads each row's latest
//     committed version once its lock is granted. MATERIALIZED keeps
//     it from being folded into the statements that read it.
//   - racefree_debit decrements the source only when both rows were
//     locked and the source's locked value minus the amount stays at or
//     above the floor. Both conditions read the locked values (computed
//     once, before the UPDATE scans anything); the UPDATE's own filter
//     would be evaluated first on the statement's snapshot, and a row
//     that did not match there would never be checked again on its
//     latest version. The UPDATE itself writes the latest version, which
//     is the one locked, so the value checked is the value decremented.
//   - racefree_credit increments the destination only when the debit
//     happened: it reads the debit's output, which runs the debit first.
//
// No UPDATE takes a lock the first part does not already hold (FOR NO KEY
// UPDATE is what an UPDATE of a non-key column takes), so a transfer's
// locks are always taken in ascending key order and two transfers cannot
// deadlock each other. At REPEATABLE READ and SERIALIZABLE a row changed
// since the snapshot fails the lock with a serialization failure instead.
//
// The last column is credit ÷ (1 − debit + credit): 1 when both changed,
// 0 when neither, and a division by zero — which fails the statement and
// so undoes the debit — should the debit change a row and the credit not
// (a trigger that skips the credited row).
func transferSQL(t dialect.Transfer) string {
	k, v, tbl := t.Key, t.Value, t.Table
	return "WITH racefree_locked AS MATERIALIZED (SELECT " + k + ", " + v + " FROM " + tbl +
		" WHERE " + k + " IN ($1, $2) ORDER BY " + k + " FOR NO KEY UPDATE), " +
		"racefree_debit AS (UPDATE " + tbl + " SET " + v + " = " + v + " - $3 WHERE " + k + " = $1" +
		" AND (SELECT count(*) FROM racefree_locked) = 2" +
		" AND (SELECT " + v + " FROM racefree_locked WHERE " + k + " = $1) - $3 >= $4 RETURNING 1), " +
		"racefree_credit AS (UPDATE " + tbl + " SET " + v + " = " + v + " + $3 WHERE " + k + " = $2" +
		" AND EXISTS (SELECT FROM racefree_debit) RETURNING 1) " +
		"SELECT (SELECT count(*) FROM racefree_locked), " +
		"(SELECT count(*) FROM racefree_locked WHERE " + k + " = $1), " +
		"(SELECT count(*) FROM racefree_locked WHERE " + k + " = $2), " +
		"(SELECT count(*) FROM racefree_credit) / (1 - (SELECT count(*) FROM racefree_debit) + (SELECT count(*) FROM racefree_credit))"
}
