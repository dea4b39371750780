package lab

import "context"

// counterBody is read-increment-write as people write it.
func counterBody(ctx context.Context, w *worker, q querier, suffix string, id int64) error {
	var n int64
	if err := q.QueryRowContext(ctx, w.q("SELECT n FROM {t} WHERE id = ?"+suffix), id).Scan(&n); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, w.q("UPDATE {t} SET n = ? WHERE id = ?"), n+1, id)
	return err
}

func counterID(w *worker) int64 { return int64(w.key() + 1) }

var counterOps = map[string]opFunc{
	"naive": func(ctx context.Context, w *worker) error {
		return counterBody(ctx, w, w.sql, "", counterID(w))
	},
	"mutex": func(ctx context.Context, w *worker) error {
		id := counterID(w)
		w.mutex.Lock()
		defer w.mutex.Unlock()
		return counterBody(ctx, w, w.sql, "", id)
	},
	"tablelock": func(ctx context.Context, w *worker) error {
		id := counterID(w)
		return w.tableLock(ctx, func(q querier) error { return counterBody(ctx, w, q, "", id) })
	},
	"forupdate": func(ctx context.Context, w *worker) error {
		id := counterID(w)
		return w.inTx(ctx, nil, func(q querier) error { return counterBody(ctx, w, q, " FOR UPDATE", id) })
	},
	"serializable": func(ctx context.Context, w *worker) error {
		id := counterID(w)
		return w.serializable(ctx, func(q querier) error { return counterBody(ctx, w, q, "", id) })
	},
	"racefree": func(ctx context.Context, w *worker) error {
		return rfIncrement(ctx, w, counterID(w))
	},
}
