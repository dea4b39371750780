package sqlitedialect

import (
	"context"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.Transferer = (*Dialect)(nil)

// Transfer is one UPDATE of both rows (transferSQL); when it changed
// nothing a second statement reads which rows exist, to tell a declined
// transfer from a missing row. Without RETURNING (before SQLite 3.35) the
// root's transaction runs instead.
func (d *Dialect) Transfer(ctx context.Context, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	if !d.features.Has(dialect.UpdateReturning) {
		return dialect.TransferResult{}, dialect.ErrTransferUnsupported
	}
	args := []any{t.From, t.To, t.Amount, t.Floor}
	rows, err := q.Query(ctx, transferSQL(t), args...)
	if err != nil {
		return dialect.TransferResult{}, err
	}
	changed := 0
	for rows.Next() {
		changed++
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return dialect.TransferResult{}, err
	}
	if err := rows.Close(); err != nil {
		return dialect.TransferResult{}, err
	}
	if changed == 2 {
		return dialect.TransferResult{Moved: true, Rows: 2, FromFound: true, ToFound: true}, nil
	}
	var r dialect.TransferResult
	var fromN, toN int64
	if err := q.QueryRow(ctx, transferCheckSQL(t), t.From, t.To).Scan(&r.Rows, &fromN, &toN); err != nil {
		return dialect.TransferResult{}, err
	}
	r.FromFound, r.ToFound = fromN > 0, toN > 0
	return r, nil
}

// transferSQL updates both rows in one statement:
//
//	UPDATE t SET v = CASE WHEN k = ?1 THEN v - ?3 ELSE v + ?3 END
//	WHERE k IN (?1, ?2)
//	  AND (SELECT count(*) FROM t WHERE k IN (?1, ?2)) = 2
//	  AND (SELECT v FROM t WHERE k = ?1) - ?3 >= ?4
//	RETURNING 1
//
// A statement is atomic, and SQLite has one writer: in autocommit the
// statement takes the write lock before it reads anything (waiting as the
// busy timeout says), so nothing changes the rows between the check and
// the write. The two subqueries do not depend on the row being updated:
// SQLite computes each once, and a WHERE with a subquery makes the UPDATE
// find every row it will change before it changes the first (no one-pass
// update), so the floor is checked on the values before the statement
// and both rows pass or neither does — tested in both key orders.
func transferSQL(t dialect.Transfer) string {
	k, v, tbl := t.Key, t.Value, t.Table
	return "UPDATE " + tbl + " SET " + v + " = CASE WHEN " + k + " = ?1 THEN " + v + " - ?3 ELSE " + v + " + ?3 END" +
		" WHERE " + k + " IN (?1, ?2)" +
		" AND (SELECT count(*) FROM " + tbl + " WHERE " + k + " IN (?1, ?2)) = 2" +
		" AND (SELECT " + v + " FROM " + tbl + " WHERE " + k + " = ?1) - ?3 >= ?4 RETURNING 1"
}

// transferCheckSQL reads how many rows the two keys name, and which.
func transferCheckSQL(t dialect.Transfer) string {
	k := t.Key
	return "SELECT count(*), coalesce(sum(" + k + " = ?1), 0), coalesce(sum(" + k + " = ?2), 0) FROM " + t.Table +
		" WHERE " + k + " IN (?1, ?2)"
}
