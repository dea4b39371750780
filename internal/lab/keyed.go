package lab

import (
	"context"
	"database/sql"
	"errors"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// keyed is a scenario whose call makes sure one row exists for a key:
// get-or-create (goc) and adding a many-to-many link (m2m). Both races are
// the same check-then-act: two workers look, both find nothing, both
// insert.
type keyed struct {
	cols []string                                            // the lookup columns
	args func(round, key int) []any                          // the lookup values of a key in a round
	sel  string                                              // SELECT of the row by its lookup
	ins  string                                              // INSERT of a new row
	rf   func(context.Context, *worker, *keyed, []any) error // the racefree strategy
}

var gocKeyed = &keyed{
	cols: []string{"name"},
	args: func(round, key int) []any {
		return []any{"key-" + itoa(round) + "-" + itoa(key)}
	},
	sel: "SELECT id FROM {t} WHERE name = ?",
	ins: "INSERT INTO {t} (name, value) VALUES (?, 1)",
	rf:  rfGetOrCreate,
}

var m2mKeyed = &keyed{
	cols: []string{"post_id", "tag_id"},
	args: func(round, key int) []any {
		return []any{int64(round + 1), int64(key + 1)}
	},
	sel: "SELECT id FROM {t} WHERE post_id = ? AND tag_id = ?",
	ins: "INSERT INTO {t} (post_id, tag_id) VALUES (?, ?)",
	rf:  rfLink,
}

// lookup picks this call's lookup values.
func (k *keyed) lookup(w *worker) []any { return k.args(w.round(), w.key()) }

// exists runs k.sel (with suffix, e.g. " FOR UPDATE") on q.
func (k *keyed) exists(ctx context.Context, w *worker, q querier, suffix string, args []any) (bool, error) {
	var id int64
	err := q.QueryRowContext(ctx, w.q(k.sel+suffix), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// selectInsert is the naive body: look, and insert when nothing was found.
func (k *keyed) selectInsert(ctx context.Context, w *worker, q querier, suffix string, args []any) error {
	found, err := k.exists(ctx, w, q, suffix, args)
	if err != nil || found {
		return err
	}
	_, err = q.ExecContext(ctx, w.q(k.ins), args...)
	return err
}

func (w *worker) isUnique(err error) bool {
	return w.db.Classify(err).Class == dialect.ClassUniqueViolation
}

// rowOps returns the call of strategy for a keyed scenario.
func rowOps(k *keyed, strategy string) opFunc {
	switch strategy {
	case "naive":
		return func(ctx context.Context, w *worker) error {
			return k.selectInsert(ctx, w, w.sql, "", k.lookup(w))
		}
	case "mutex":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			w.mutex.Lock()
			defer w.mutex.Unlock()
			return k.selectInsert(ctx, w, w.sql, "", args)
		}
	case "tablelock":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			return w.tableLock(ctx, func(q querier) error { return k.selectInsert(ctx, w, q, "", args) })
		}
	case "catch":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			err := k.selectInsert(ctx, w, w.sql, "", args)
			if err == nil || !w.isUnique(err) {
				return err
			}
			found, err := k.exists(ctx, w, w.sql, "", args)
			if err == nil && !found {
				return errNotFoundAfterConflict
			}
			return err
		}
	case "createfirst":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			_, err := w.sql.ExecContext(ctx, w.q(k.ins), args...)
			if err == nil || !w.isUnique(err) {
				return err
			}
			found, err := k.exists(ctx, w, w.sql, "", args)
			if err == nil && !found {
				return errNotFoundAfterConflict
			}
			return err
		}
	case "forupdate":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			return w.inTx(ctx, nil, func(q querier) error { return k.selectInsert(ctx, w, q, " FOR UPDATE", args) })
		}
	case "serializable":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			return w.serializable(ctx, func(q querier) error { return k.selectInsert(ctx, w, q, "", args) })
		}
	case "advisory":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			return w.advisoryLock(ctx, lockName(w.spec, args), func(q querier) error { return k.selectInsert(ctx, w, q, "", args) })
		}
	case "namedlock":
		return func(ctx context.Context, w *worker) error {
			args := k.lookup(w)
			return racefree.RunInTx(ctx, w.db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
				if err := racefree.LockNamed(ctx, tx, lockName(w.spec, args), racefree.LockOptions{}); err != nil {
					return err
				}
				return k.selectInsert(ctx, w, tx, "", args)
			})
		}
	case "racefree":
		return func(ctx context.Context, w *worker) error { return k.rf(ctx, w, k, k.lookup(w)) }
	}
	return nil
}
