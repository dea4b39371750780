package sqlitedialect

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.Transferer = (*Dialect)(nil)

// Transfer is one UPDATE of both rows (transferSQL), which changes both
// (2 rows affected) or neither; when it changed nothing a second statement
// reads which rows exist, to tell a declined transfer from a missing row.
func (d *Dialect) Transfer(ctx context.Context, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	res, err := q.Exec(ctx, transferSQL(t), t.From, t.To, t.Amount, t.Floor)
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
		// Only a trigger that skips a row (RAISE(IGNORE)) gets here, and
		// the statement has committed what it changed: say so loudly.
		return dialect.TransferResult{}, fmt.Errorf("sqlitedialect: transfer: the statement changed %d rows, want 2 or 0 (does a trigger skip a row?)", n)
	}
	var fromN, toN, same int64
	if err := q.QueryRow(ctx, transferCheckSQL(t), t.From, t.To).Scan(&fromN, &toN, &same); err != nil {
		return dialect.TransferResult{}, err
	}
	return dialect.TransferResult{FromFound: fromN > 0, ToFound: toN > 0, Rows: int(fromN + toN - same)}, nil
}

// transferSQL updates both rows in one statement:
//
//	UPDATE t SET v = CASE WHEN k = ?1 THEN v - ?3 ELSE v + ?3 END
//	WHERE (k = ?1 OR k = ?2)
//	  AND (SELECT v FROM t WHERE k = ?1) - ?3 >= ?4
//	  AND EXISTS (SELECT 1 FROM t WHERE k = ?2)
//	  AND NOT EXISTS (SELECT 1 FROM t WHERE k = ?1 AND k = ?2)
//
// A statement is atomic, and SQLite has one writer: in autocommit the
// statement takes the write lock before it reads anything (waiting as the
// busy timeout says), so nothing changes the rows between the check and
// the write. The subqueries do not depend on the row being updated:
// SQLite computes each once, and a WHERE with a subquery makes the UPDATE
// find every row it will change before it changes the first (no one-pass
// update), so the floor is checked on the values before the statement and
// both rows pass or neither does — tested in both key orders. The last
// condition refuses two keys that the column's collation takes as one row
// (NOCASE 'a' and 'A'), which would otherwise be debited alone. Point
// lookups rather than k IN (…) and no RETURNING: each of those makes
// SQLite build a temporary b-tree per statement, which cost a quarter of
// a transfer's time.
func transferSQL(t dialect.Transfer) string {
	k, v, tbl := t.Key, t.Value, t.Table
	return "UPDATE " + tbl + " SET " + v + " = CASE WHEN " + k + " = ?1 THEN " + v + " - ?3 ELSE " + v + " + ?3 END" +
		" WHERE (" + k + " = ?1 OR " + k + " = ?2)" +
		" AND (SELECT " + v + " FROM " + tbl + " WHERE " + k + " = ?1) - ?3 >= ?4" +
		" AND EXISTS (SELECT 1 FROM " + tbl + " WHERE " + k + " = ?2)" +
		" AND NOT EXISTS (SELECT 1 FROM " + tbl + " WHERE " + k + " = ?1 AND " + k + " = ?2)"
}

// transferCheckSQL reads whether each key names a row, and whether both
// name the same one.
func transferCheckSQL(t dialect.Transfer) string {
	k, tbl := t.Key, t.Table
	return "SELECT (SELECT count(*) FROM " + tbl + " WHERE " + k + " = ?1), (SELECT count(*) FROM " + tbl + " WHERE " + k + " = ?2), " +
		"(SELECT count(*) FROM " + tbl + " WHERE " + k + " = ?1 AND " + k + " = ?2)"
}

var _ dialect.SharedTransferLocker = (*Dialect)(nil)

// LockTransfersSQL is "": SQLite's one writer holds every row from the
// shared transaction's first write (or its BEGIN IMMEDIATE) on.
func (d *Dialect) LockTransfersSQL(dialect.Transfer) string { return "" }
