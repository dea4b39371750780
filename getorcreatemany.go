package racefree

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// Item is one input of GetOrCreateMany: the lookup that identifies the row
// and the defaults it is created with.
type Item struct {
	Lookup, Defaults Values
}

// Result is one output of GetOrCreateMany: the row and whether this call
// created it.
type Result[T any] struct {
	Row     T
	Created bool
}

// GetOrCreateMany is GetOrCreate for many lookups in one call. It returns
// one Result per item, in input order. Items with the same lookup get the
// same row; the first of them is the one created, with its defaults, and
// only it reports Created. Rows that already existed are returned too, on
// every engine.
//
// Every item must name the same lookup columns and the same default
// columns. Bad input anywhere in the batch is refused before anything is
// written, and the rows a batch creates are written all or none: outside
// a transaction its INSERTs run in one transaction of their own when there
// is more than one of them, and always on MariaDB and SQLite; inside yours
// they run in a savepoint when there is more than one, and always on
// PostgreSQL (so that a failed INSERT does not abort your transaction) and
// MariaDB.
//
// # Round trips
//
// With the constraint strategy the batch reads first: one SELECT, the
// whole cost when every row exists. The missing keys are then inserted in
// one canonical order, so that concurrent batches with overlapping keys
// cannot deadlock on each other. Whatever the contention, for a batch
// whose INSERT fits in one statement of at most 30,000 bound values
// (15,000 keys of one lookup column and one default; a larger batch takes
// such a round per statement, in one transaction):
//
//   - PostgreSQL: SELECT, INSERT … ON CONFLICT DO NOTHING RETURNING, and
//     if another writer won some keys meanwhile one SELECT of them: 3 round
//     trips at most; in your transaction 2 more (SAVEPOINT, RELEASE).
//   - MariaDB: SELECT, SET TRANSACTION ISOLATION LEVEL READ COMMITTED,
//     START TRANSACTION, INSERT IGNORE … RETURNING, SELECT @@warning_count,
//     the SELECT of the keys lost, COMMIT: 7 at most (measured under
//     contention from 4 processes); in your transaction SAVEPOINT and
//     RELEASE replace the three transaction statements. IGNORE skips the
//     rows that exist, so RETURNING gives back exactly the rows created and
//     one existing key no longer fails the statement. IGNORE would also
//     store, altered and with a warning, a value the column cannot hold
//     (too long, out of range, a bad date): every skipped row leaves one
//     warning, so a warning more than the rows skipped rolls the batch
//     back, and it fails with ErrInvalidInput naming the server's warning.
//   - MySQL: not constant under contention. Without RETURNING an INSERT
//     IGNORE cannot tell which rows it created (LAST_INSERT_ID names only
//     the first, and skipped rows leave gaps), so the batch runs a plain
//     multi-row INSERT and reads the rows back: 3 round trips without
//     contention, but one key created by another writer meanwhile fails
//     the whole INSERT, and then the rows that now exist are read and the
//     rest inserted again, a round per conflict, each making progress.
//   - SQLite: no round trips (it runs in-process). In one IMMEDIATE
//     transaction, INSERT … ON CONFLICT DO NOTHING RETURNING in statements
//     of at most 256 bound values, each prepared once per DB: the Go
//     driver binds arguments in time quadratic in their number. The engine
//     is the floor: the bare INSERTs of 1,000 rows are about 13 times
//     faster than 1,000 GetOrCreate calls (BenchmarkGetOrCreateManyFloor).
//
// Beyond that, only in rare cases, statements are added a bounded number
// of times: a key whose row was deleted between the conflict and the
// re-read is inserted again; on MariaDB a key that IGNORE skipped and the
// re-read did not find either conflicts with something else (another
// unique index, a foreign key) and is inserted again without IGNORE, so
// that the violation is returned as it is (another unique index's matches
// ErrUniqueViolation); a deadlock or SQLITE_BUSY retries the transaction
// (see RunInTx).
//
// The lock strategy takes one named lock per distinct lookup, in canonical
// order, inside one transaction (a round trip each), then reads and
// inserts (a plain INSERT … RETURNING on MariaDB: nobody else inserts these
// keys); the serializable strategy runs the same statements in one
// SERIALIZABLE transaction. The guarantees, recovery rules and errors are
// GetOrCreate's.
func GetOrCreateMany[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) ([]Result[T], error) {
	if len(items) == 0 {
		return nil, nil
	}
	b, err := planBatch[T](ctx, ex, table, items, opts)
	if err != nil {
		return nil, err
	}
	o := b.op
	res := newBatchRows[T](len(b.keys))
	switch o.strat {
	case StrategyConstraint:
		err = constraintBatch(ctx, b, res)
	default:
		err = o.inTx(ctx, func(ctx context.Context, tx *Tx) error {
			if o.strat == StrategyLock {
				order := slices.Clone(b.keys)
				slices.SortFunc(order, func(x, y batchKey) int { return strings.Compare(x.key, y.key) })
				for _, k := range order {
					ko := *o
					ko.lvals = k.lvals
					if err := lockForGetOrCreate(ctx, tx, ko.lockName()); err != nil {
						return err
					}
				}
			}
			res.reset()
			// The read after the lock must see the previous holder's row,
			// which a MySQL REPEATABLE READ snapshot taken before may not.
			missing, err := readMissing(ctx, b, tx.tx, tx, res.all(), o.rereadLock(tx), res)
			if err != nil || len(missing) == 0 {
				return err
			}
			return writeMissing(ctx, b, tx, missing, res)
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Result[T], len(items))
	for i, j := range b.of {
		out[i].Row = res.row[j]
		out[i].Created = res.created[j] && b.keys[j].first == i
	}
	return out, nil
}

// batch is a planned GetOrCreateMany: the distinct lookups.
type batch struct {
	op    *op
	keys  []batchKey
	index map[string]int // encoded lookup → position in keys
	of    []int          // item → position in keys
	nulls bool           // some lookup value is NULL
	lazy  bool           // some default is Lazy, not computed yet
}

type batchKey struct {
	key   string
	lvals []any // normalized lookup values, in op.lcols order
	ivals []any // lookup then defaults, in op.icols order
	first int   // the first item with this lookup
}

// planBatch validates every item and resolves the strategy. It sends
// nothing but, once per table and DB, the catalog reads.
func planBatch[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) (*batch, error) {
	o, err := prepare[T](ctx, ex, "get or create many", table, items[0].Lookup, items[0].Defaults, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (item 0)", err)
	}
	b := &batch{op: o, index: make(map[string]int, len(items)), of: make([]int, len(items)), keys: make([]batchKey, 0, len(items))}
	dcols := o.icols[len(o.lcols):]
	var kb []byte
	for i, it := range items {
		lvals, ivals, err := o.itemValues(i, it, dcols)
		if err != nil {
			return nil, fmt.Errorf("%w (item %d)", err, i)
		}
		kb = appendKey(kb[:0], lvals)
		j, seen := b.index[string(kb)]
		if !seen {
			j = len(b.keys)
			k := string(kb)
			b.index[k] = j
			b.keys = append(b.keys, batchKey{key: k, lvals: lvals, ivals: ivals, first: i})
		}
		b.of[i] = j
		b.lazy = b.lazy || hasLazy(ivals[len(lvals):])
		for _, v := range lvals {
			if v != nil {
				continue
			}
			b.nulls = true
			if o.strat == StrategyConstraint && (o.ix == nil || !o.ix.NullsNotDistinct) {
				if opts.Strategy == StrategyConstraint {
					return nil, fmt.Errorf("racefree: %s: %w: a unique index treats NULLs as distinct (item %d)", o.verb, ErrNullLookup, i)
				}
				o.null = true
			}
		}
	}
	if o.null && opts.Strategy == StrategyAuto {
		if o.strat, err = o.resolve(StrategyAuto); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// itemValues checks item i and returns its normalized lookup values and
// the values it inserts (lookup, then defaults, in op.icols order).
func (o *op) itemValues(i int, it Item, dcols []string) (lvals, ivals []any, err error) {
	ivals = make([]any, 0, len(o.icols))
	if ivals, ok := o.shapedValues(it.Lookup, o.lcols, ivals, false); ok {
		if ivals, ok = o.shapedValues(it.Defaults, dcols, ivals, true); ok {
			return ivals[:len(o.lcols):len(o.lcols)], ivals, nil
		}
	}
	// Not item 0's shape, or a bad value: columns checks it and names
	// every problem.
	var bad badInput
	lk := roleValues{roleLookup, it.Lookup}
	lcols, lvals := o.columns(&bad, lk)
	cols, vals := o.columns(&bad, roleValues{roleDefault, it.Defaults}, lk)
	if err := bad.err(o.verb); err != nil {
		return nil, nil, err
	}
	if !slices.Equal(lcols, o.lcols) {
		return nil, nil, inputError(o.verb, "item %d looks up %v, item 0 looks up %v: every item must use the same lookup columns", i, lcols, o.lcols)
	}
	if !slices.Equal(cols, dcols) {
		return nil, nil, inputError(o.verb, "item %d has defaults %v, item 0 has %v: every item must have the same default columns", i, cols, dcols)
	}
	return lvals, append(lvals[:len(lvals):len(lvals)], vals...), nil
}

// shapedValues appends to dst the values of vals named exactly cols (item
// 0's names, sorted and checked once), normalized and checked as
// op.columns does, without sorting the names of every item again; lazy
// allows Lazy values (defaults). ok is false when vals has other names or
// a bad value: op.columns then says what is wrong.
func (o *op) shapedValues(vals Values, cols []string, dst []any, lazy bool) (out []any, ok bool) {
	if len(vals) != len(cols) {
		return dst, false
	}
	for _, name := range cols {
		v, found := vals[name]
		if !found {
			return dst, false
		}
		if _, isLazy := v.(Lazy); isLazy && lazy {
			dst = append(dst, v)
			continue
		}
		col, _ := o.t.Column(name)
		v, err := normalizeValue(col, famUnknown, v)
		if err != nil || v == nil && !col.Nullable {
			return dst, false
		}
		dst = append(dst, v)
	}
	return dst, true
}

// batchRows holds what the batch has learnt per key.
type batchRows[T any] struct {
	row     []T
	known   []bool // row holds the key's row
	created []bool // this call inserted it
	// unmatched counts rows read that matched no key as Go compares
	// lookup values (see settle).
	unmatched int
}

func newBatchRows[T any](n int) *batchRows[T] {
	return &batchRows[T]{row: make([]T, n), known: make([]bool, n), created: make([]bool, n)}
}

func (r *batchRows[T]) reset() {
	clear(r.row)
	clear(r.known)
	clear(r.created)
}

// forget drops what is known of the keys at pos: the transaction that
// wrote them was rolled back.
func (r *batchRows[T]) forget(pos []int) {
	var zero T
	for _, j := range pos {
		r.row[j], r.known[j], r.created[j] = zero, false, false
	}
}

// all is every key position.
func (r *batchRows[T]) all() []int {
	pos := make([]int, len(r.row))
	for i := range pos {
		pos[i] = i
	}
	return pos
}

// unknown filters pos, in place, down to the keys without a row.
func (r *batchRows[T]) unknown(pos []int) []int {
	return slices.DeleteFunc(pos, func(j int) bool { return r.known[j] })
}

// constraintBatch is the constraint strategy: read what exists, then
// insert the rest.
func constraintBatch[T any](ctx context.Context, b *batch, res *batchRows[T]) error {
	o := b.op
	var missing []int
	var err error
	if o.h.tx != nil {
		missing, err = readMissing(ctx, b, o.h.q, o.h.tx, res.all(), "", res)
		if err != nil || len(missing) == 0 {
			return err
		}
		return writeMissing(ctx, b, o.h.tx, missing, res)
	}
	// Outside a transaction the read can be run again after a busy or
	// unsent error; it changes nothing.
	err = o.db.retry(ctx, o.opts.Tx, func(ctx context.Context) error {
		res.reset()
		missing, err = readMissing(ctx, b, o.h.q, nil, res.all(), "", res)
		return err
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	return writeMissing(ctx, b, nil, missing, res)
}

// readMissing reads the rows of the keys at pos and returns the keys it
// did not find, in canonical order: the order they are inserted in, so
// that two batches inserting overlapping keys wait on each other in the
// same order, never in a cycle.
func readMissing[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, lock string, res *batchRows[T]) ([]int, error) {
	if err := batchRead(ctx, b, q, tx, pos, lock, res); err != nil {
		return nil, err
	}
	missing := res.unknown(pos)
	slices.SortFunc(missing, func(x, y int) int { return strings.Compare(b.keys[x].key, b.keys[y].key) })
	return missing, nil
}
