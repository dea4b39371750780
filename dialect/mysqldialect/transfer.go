package mysqldialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.Transferer = (*Dialect)(nil)

// Transfer is one multi-table UPDATE (transferSQL), atomic on its own; it
// changes both rows (2 rows affected) or neither. When it changed nothing
// a second statement reads which rows exist, to tell a declined transfer
// from a missing row: MySQL's UPDATE cannot return rows.
//
// TiDB gets racefree's fallback transaction instead (ErrTransferUnsupported):
// its multi-table UPDATE decided on values older than a concurrent commit
// it had waited for (TestTransfer_DecidesOnLatestValue), and did not hold
// the lower row while waiting for the higher (TestTransfer_LocksInKeyOrder).
func (d *Dialect) Transfer(ctx context.Context, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	if d.flavor == TiDB {
		return dialect.TransferResult{}, dialect.ErrTransferUnsupported
	}
	query, args := transferSQL(t)
	res, err := q.Exec(ctx, query, args...)
	if err != nil {
		return dialect.TransferResult{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dialect.TransferResult{}, err
	}
	switch n {
	case 2:
		return dialect.TransferResult{Moved: true, Rows: 2, FromFound: true, ToFound: true}, nil
	case 0:
	default:
		// Unreachable with the statement's own SET list (both values
		// change by a non-zero amount), and a statement that changed one
		// row has already committed in autocommit: say so loudly.
		return dialect.TransferResult{}, fmt.Errorf("mysqldialect: transfer: the statement changed %d rows, want 2 or 0", n)
	}
	lock := ""
	if t.InTx {
		// The UPDATE read the latest committed rows; a plain read in a
		// REPEATABLE READ transaction would read its older snapshot.
		lock, _ = d.FreshRead(sql.LevelDefault, false)
	}
	rows, err := q.Query(ctx, transferCheckSQL(t, lock), t.From, t.To, t.From, t.To)
	if err != nil {
		return dialect.TransferResult{}, err
	}
	var r dialect.TransferResult
	same := 0
	for rows.Next() {
		var which int
		if err := rows.Scan(&which); err != nil {
			rows.Close()
			return dialect.TransferResult{}, err
		}
		switch which {
		case 1:
			r.FromFound = true
		case 2:
			r.ToFound = true
		case 3:
			same = 1
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return dialect.TransferResult{}, err
	}
	if r.FromFound {
		r.Rows++
	}
	if r.ToFound {
		r.Rows++
	}
	r.Rows -= same
	return r, nil
}

// transferCheckSQL reads whether each key names a row (a row 1 for from,
// 2 for to), and whether both name the same one (3), with a point lookup
// each: a locking read of k IN (?, ?) on a small table is a scan of the
// whole index that share-locks every row it passes, and deadlocks with
// the transfers of other rows. A UNION rather than scalar subqueries: on
// Galera a scalar subquery whose locking read was aborted by a replicated
// write came back as NULL rather than as the error.
func transferCheckSQL(t dialect.Transfer, lock string) string {
	k := t.Key
	return "(SELECT 1 FROM " + t.Table + " WHERE " + k + " = ?" + lock + ") UNION ALL " +
		"(SELECT 2 FROM " + t.Table + " WHERE " + k + " = ?" + lock + ") UNION ALL " +
		"(SELECT 3 FROM " + t.Table + " WHERE " + k + " = ? AND " + k + " = ?)"
}

// transferSQL joins the table to itself, the row of the lower key (as the
// root orders keys) first, and updates both rows of the one joined row:
//
//	UPDATE t AS racefree_lo STRAIGHT_JOIN t AS racefree_hi ON racefree_hi.k = ?
//	SET racefree_lo.v = racefree_lo.v - ?, racefree_hi.v = racefree_hi.v + ?
//	WHERE racefree_lo.k = ? AND racefree_lo.k <> racefree_hi.k AND racefree_lo.v >= ? + ?
//
// (from the lower key; from the higher one the signs and the checked row
// swap). The <> keeps two keys that the column's collation takes as equal
// ('a' and 'A' under a _ci collation) from joining the row to itself,
// which would apply the debit and drop the credit. STRAIGHT_JOIN makes InnoDB read, and so X-lock, the lower row
// first, whether the optimizer reads the two as const tables (primary or
// unique key lookups, read in join order while planning) or in the join
// itself: every transfer locks in ascending key order, and two transfers
// cannot deadlock each other. The reads of an UPDATE are locking reads of
// the latest committed versions, at any isolation level, so the floor is
// checked on the value the statement then decrements, under its lock.
// The check is value >= amount + floor rather than value − amount >=
// floor, which a BIGINT UNSIGNED column would turn into an out-of-range
// error. Decimal strings are cast to DECIMAL(65,30): MySQL would
// otherwise compute a string operand as a double.
func transferSQL(t dialect.Transfer) (string, []any) {
	amount, floor := "?", "?"
	if t.Decimal {
		amount, floor = "CAST(? AS DECIMAL(65,30))", "CAST(? AS DECIMAL(65,30))"
	}
	lo, hi := "racefree_lo", "racefree_hi"
	src, dst, loKey, hiKey := lo, hi, t.From, t.To
	if !t.FromFirst {
		src, dst, loKey, hiKey = hi, lo, t.To, t.From
	}
	v := t.Value
	query := "UPDATE " + t.Table + " AS " + lo + " STRAIGHT_JOIN " + t.Table + " AS " + hi +
		" ON " + hi + "." + t.Key + " = ?" +
		" SET " + src + "." + v + " = " + src + "." + v + " - " + amount + ", " +
		dst + "." + v + " = " + dst + "." + v + " + " + amount +
		" WHERE " + lo + "." + t.Key + " = ? AND " + lo + "." + t.Key + " <> " + hi + "." + t.Key +
		" AND " + src + "." + v + " >= " + amount + " + " + floor
	// The SET list names the source first whatever its position, so the
	// arguments are in one order.
	return query, []any{hiKey, t.Amount, t.Amount, loKey, t.Amount, t.Floor}
}
