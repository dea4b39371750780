package racefree

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/racefree/racefree/dialect"
)

// GetOrCreateMany's engine: a batch is the distinct lookups of the items,
// read in one statement and inserted in few (batch_sql.go), settled key by
// key after lost races (batch_write.go).

// batch is a planned GetOrCreateMany: the distinct lookups.
type batch struct {
	call  *call
	keys  []batchKey
	index map[string]int // encoded lookup → position in keys
	of    []int          // item → position in keys
	nulls bool           // some lookup value is NULL
	lazy  bool           // some default is Lazy, not computed yet
}

type batchKey struct {
	key   string
	lvals []any // normalized lookup values, in call.lcols order
	ivals []any // lookup then defaults, in call.icols order
	first int   // the first item with this lookup
}

// planBatch validates every item and resolves the strategy. It sends
// nothing but, once per table and DB, the catalog reads.
func planBatch[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) (*batch, error) {
	c, err := planCall[T](ctx, ex, "get or create many", table, items[0].Lookup, items[0].Defaults, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (item 0)", err)
	}
	b := &batch{call: c, index: make(map[string]int, len(items)), of: make([]int, len(items)), keys: make([]batchKey, 0, len(items))}
	dcols := c.icols[len(c.lcols):]
	var kb []byte
	for i, it := range items {
		lvals, ivals, err := c.itemValues(i, it, dcols)
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
			if c.strat == StrategyConstraint && (c.ix == nil || !c.ix.NullsNotDistinct) {
				if opts.Strategy == StrategyConstraint {
					return nil, fmt.Errorf("racefree: %s: %w: a unique index treats NULLs as distinct (item %d)", c.verb, ErrNullLookup, i)
				}
				c.null = true
			}
		}
	}
	if c.null && opts.Strategy == StrategyAuto {
		if c.strat, err = c.resolve(StrategyAuto); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// itemValues checks item i and returns its normalized lookup values and
// the values it inserts (lookup, then defaults, in call.icols order).
func (c *call) itemValues(i int, it Item, dcols []string) (lvals, ivals []any, err error) {
	ivals = make([]any, 0, len(c.icols))
	if ivals, ok := c.shapedValues(it.Lookup, c.lcols, ivals, false); ok {
		if ivals, ok = c.shapedValues(it.Defaults, dcols, ivals, true); ok {
			return ivals[:len(c.lcols):len(c.lcols)], ivals, nil
		}
	}
	// Not item 0's shape, or a bad value: columns checks it and names
	// every problem.
	var bad badInput
	lk := roleValues{roleLookup, it.Lookup}
	lcols, lvals := c.columns(&bad, lk)
	cols, vals := c.columns(&bad, roleValues{roleDefault, it.Defaults}, lk)
	if err := bad.err(c.verb); err != nil {
		return nil, nil, err
	}
	if !slices.Equal(lcols, c.lcols) {
		return nil, nil, inputError(c.verb, "item %d looks up %v, item 0 looks up %v: every item must use the same lookup columns", i, lcols, c.lcols)
	}
	if !slices.Equal(cols, dcols) {
		return nil, nil, inputError(c.verb, "item %d has defaults %v, item 0 has %v: every item must have the same default columns", i, cols, dcols)
	}
	return lvals, append(lvals[:len(lvals):len(lvals)], vals...), nil
}

// shapedValues appends to dst the values of vals named exactly cols (item
// 0's names, sorted and checked once), normalized and checked as
// call.columns does, without sorting the names of every item again; lazy
// allows Lazy values (defaults). ok is false when vals has other names or
// a bad value: call.columns then says what is wrong.
func (c *call) shapedValues(vals Values, cols []string, dst []any, lazy bool) (out []any, ok bool) {
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
		col, _ := c.t.Column(name)
		v, err := normalizeValue(col, c.t.valueFam(name), v)
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
	// writing is set once an attempt may have sent an INSERT: before, a
	// lost attempt created nothing.
	writing bool
}

func newBatchRows[T any](n int) *batchRows[T] {
	return &batchRows[T]{row: make([]T, n), known: make([]bool, n), created: make([]bool, n)}
}

func (r *batchRows[T]) reset() {
	clear(r.row)
	clear(r.known)
	clear(r.created)
	r.writing = false
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

// batchRecovery is what a GetOrCreateMany run again after a lost
// connection or an unknown COMMIT knows about its earlier attempts: the
// keys whose rows they may have created. The zero value knows of none.
type batchRecovery struct {
	doubt error // the first loss
	keys  []int // positions of the keys a lost attempt may have created
}

// note looks at an attempt's error: a lost connection or an unknown
// COMMIT is marked safe to run again (retrySafeError), and every key the
// attempt had not read as already there is remembered as possibly created
// by it. Other errors are returned as they are.
func (r *batchRecovery) note(c *call, res interface{ uncertain() []int }, err error) error {
	switch {
	case err == nil, errors.As(err, new(*RetryError)):
		return err
	case errors.Is(err, ErrCommitUnknown), c.db.d.Classify(err).Class == dialect.ClassConnection:
	default:
		return err
	}
	if r.doubt == nil {
		r.doubt = err
	}
	for _, j := range res.uncertain() {
		if !slices.Contains(r.keys, j) {
			r.keys = append(r.keys, j)
		}
	}
	return &retrySafeError{err}
}

// uncertain is every key position an attempt may have created a row for:
// none before it sent an INSERT, and then every one not known to have
// existed before this call (a row not read yet, or one it created).
func (r *batchRows[T]) uncertain() []int {
	if !r.writing {
		return nil
	}
	var pos []int
	for j := range r.row {
		if !r.known[j] || r.created[j] {
			pos = append(pos, j)
		}
	}
	return pos
}

// constraintBatch is the constraint strategy: read what exists, then
// insert the rest.
func constraintBatch[T any](ctx context.Context, b *batch, res *batchRows[T]) error {
	c := b.call
	var missing []int
	var err error
	if c.h.tx != nil {
		missing, err = readMissing(ctx, b, c.h.q, c.h.tx, res.all(), "", res)
		if err != nil || len(missing) == 0 {
			return err
		}
		return writeMissing(ctx, b, c.h.tx, missing, res)
	}
	// Outside a transaction the read can be run again after a busy or
	// unsent error; it changes nothing.
	err = c.db.retry(ctx, c.opts.Retry, func(ctx context.Context) error {
		res.reset()
		missing, err = readMissing(ctx, b, c.h.q, nil, res.all(), "", res)
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
