package racefree

import (
	"context"
	"errors"

	"github.com/racefree/racefree/dialect"
)

// The transfer of engines without a dialect.Transferer: a transaction that
//
//	SELECT CASE WHEN k = ? THEN 1 ELSE 0 END FROM t WHERE k IN (?, ?) ORDER BY k FOR UPDATE
//	UPDATE t SET v = v - ? WHERE k = ? AND v - ? >= ?   -- the debit
//	UPDATE t SET v = v + ? WHERE k = ?                  -- the credit
//
// locks both rows in key order (the lock clause as LockClause renders it:
// on SQLite the write lock), so that two transfers cannot deadlock each
// other, and then debits with the floor checked and credits. The UPDATEs
// run after the locks were granted, so at READ COMMITTED they see the
// latest committed values: the debit checks the floor on the value it
// decrements. Five round trips with BEGIN and COMMIT, where a dialect's
// statement is one.

// errNotMoved makes the fallback's transaction or savepoint roll back
// when the credit went first and the debit was then declined or found no
// row; the caller reads why from the TransferResult.
var errNotMoved = errors.New("racefree: transfer moved nothing")

// transferFallback runs the fallback in a transaction of its own on the
// pool or connection h, retried as RunInTx retries.
func (h handle) transferFallback(ctx context.Context, t dialect.Transfer, opts TxOptions) (dialect.TransferResult, error) {
	var ex Executor = h.db
	if h.conn != nil {
		ex = h.conn
	}
	var r dialect.TransferResult
	err := RunInTx(ctx, ex, opts, func(ctx context.Context, tx *Tx) error {
		t := t
		t.InTx = true
		var err error
		r, err = transferStatements(ctx, tx, t)
		return err
	})
	switch {
	case errors.Is(err, errNotMoved):
		return r, nil
	case err != nil && !errors.As(err, new(*RetryError)) && !errors.As(err, new(*CommitUnknownError)):
		return r, transferErr(h.db, err)
	}
	return r, err
}

// transferStatements runs the fallback's statements in tx and returns
// errNotMoved, with the result saying why, when the transfer must be
// rolled back.
func transferStatements(ctx context.Context, tx *Tx, t dialect.Transfer) (dialect.TransferResult, error) {
	d, q := tx.db.d, tx.tx
	ph := d.Placeholder
	clause, err := LockClause(ctx, tx, RowLockOptions{})
	if err != nil {
		return dialect.TransferResult{}, err
	}
	rows, err := q.Query(ctx, "SELECT CASE WHEN "+t.Key+" = "+ph(1)+" THEN 1 ELSE 0 END FROM "+t.Table+
		" WHERE "+t.Key+" IN ("+ph(2)+", "+ph(3)+") ORDER BY "+t.Key+clause, t.From, t.From, t.To)
	if err != nil {
		return dialect.TransferResult{}, err
	}
	var r dialect.TransferResult
	for rows.Next() {
		var isFrom int
		if err := rows.Scan(&isFrom); err != nil {
			rows.Close()
			return dialect.TransferResult{}, err
		}
		r.Rows++
		if isFrom == 1 {
			r.FromFound = true
		} else {
			r.ToFound = true
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return dialect.TransferResult{}, err
	}
	if r.Rows != 2 || !r.FromFound || !r.ToFound {
		// A row missing, or both keys naming one row (the column's
		// collation): nothing was written.
		if r.Rows == 1 && r.FromFound {
			// One row, found as from: to may name it too, or nothing.
			var same int64
			if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM "+t.Table+" WHERE "+t.Key+" = "+ph(1)+" AND "+t.Key+" = "+ph(2), t.From, t.To).Scan(&same); err != nil {
				return dialect.TransferResult{}, err
			}
			r.ToFound = same > 0
		}
		return r, errNotMoved
	}
	moved, err := execChanged(ctx, q, "UPDATE "+t.Table+" SET "+t.Value+" = "+t.Value+" - "+ph(1)+
		" WHERE "+t.Key+" = "+ph(2)+" AND "+t.Value+" - "+ph(3)+" >= "+ph(4), t.Amount, t.From, t.Amount, t.Floor)
	if err != nil || !moved {
		return r, errors.Join(err, errIfNot(moved))
	}
	if _, err := execChanged(ctx, q, "UPDATE "+t.Table+" SET "+t.Value+" = "+t.Value+" + "+ph(1)+
		" WHERE "+t.Key+" = "+ph(2), t.Amount, t.To); err != nil {
		return r, err
	}
	r.Moved = true
	return r, nil
}

// errIfNot returns errNotMoved when the debit changed nothing: the floor
// declined the transfer.
func errIfNot(moved bool) error {
	if moved {
		return nil
	}
	return errNotMoved
}

// execChanged runs a statement and reports whether it changed a row.
func execChanged(ctx context.Context, q dialect.Querier, query string, args ...any) (bool, error) {
	res, err := q.Exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
