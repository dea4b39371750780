package racefree

import (
	"context"
	"errors"

	"github.com/racefree/racefree/dialect"
)

// The transfer of engines without a dialect.Transferer: a transaction of
// two conditional UPDATEs in key order,
//
//	UPDATE t SET v = v - ? WHERE k = ? AND v - ? >= ?   -- the debit
//	UPDATE t SET v = v + ? WHERE k = ?                  -- the credit
//
// the one of the lower key first. Each UPDATE locks its row, so the rows
// are locked in key order and two transfers cannot deadlock each other,
// and the debit checks the floor on the row it locks. It is the
// hand-written transfer, without the SELECT … FOR UPDATE that would only
// add a round trip: three or four round trips with BEGIN and COMMIT, where
// a dialect's statement is one.

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
		r, err = transferStatements(ctx, tx.db.d, tx.tx, t)
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

// transferStatements runs the two UPDATEs on q, a transaction, and
// returns errNotMoved, with the result saying why, when the transfer must
// be rolled back.
func transferStatements(ctx context.Context, d dialect.Dialect, q dialect.Querier, t dialect.Transfer) (dialect.TransferResult, error) {
	ph := d.Placeholder
	debit := func(ctx context.Context) (bool, error) {
		return execChanged(ctx, q, "UPDATE "+t.Table+" SET "+t.Value+" = "+t.Value+" - "+ph(1)+
			" WHERE "+t.Key+" = "+ph(2)+" AND "+t.Value+" - "+ph(3)+" >= "+ph(4), t.Amount, t.From, t.Amount, t.Floor)
	}
	credit := func(ctx context.Context) (bool, error) {
		return execChanged(ctx, q, "UPDATE "+t.Table+" SET "+t.Value+" = "+t.Value+" + "+ph(1)+
			" WHERE "+t.Key+" = "+ph(2), t.Amount, t.To)
	}
	first, second := debit, credit
	if !t.FromFirst {
		first, second = credit, debit
	}
	ok, err := first(ctx)
	if err == nil && ok {
		ok, err = second(ctx)
	}
	if err != nil {
		return dialect.TransferResult{}, err
	}
	if ok {
		return dialect.TransferResult{Moved: true, Rows: 2, FromFound: true, ToFound: true}, nil
	}
	// The transaction holds the lock of every row it changed, so this
	// read sees them as the UPDATEs did.
	var r dialect.TransferResult
	var fromN, toN int64
	err = q.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN "+t.Key+" = "+ph(1)+" THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN "+
		t.Key+" = "+ph(2)+" THEN 1 ELSE 0 END), 0) FROM "+t.Table+" WHERE "+t.Key+" IN ("+ph(3)+", "+ph(4)+")",
		t.From, t.To, t.From, t.To).Scan(&r.Rows, &fromN, &toN)
	if err != nil {
		return dialect.TransferResult{}, err
	}
	r.FromFound, r.ToFound = fromN > 0, toN > 0
	return r, errNotMoved
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
