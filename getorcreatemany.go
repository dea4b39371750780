package racefree

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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

// maxBatchParams bounds the bound parameters of one statement, below
// SQLite's default limit of 32766 (PostgreSQL and MySQL allow 65535).
const maxBatchParams = 30000

// GetOrCreateMany is GetOrCreate for many lookups in one call. It returns
// one Result per item, in input order. Items with the same lookup get the
// same row; the first of them is the one created, with its defaults, and
// only it reports Created. Rows that already existed are returned too, on
// every engine.
//
// Every item must name the same lookup columns and the same default
// columns. With the constraint strategy the batch costs a constant number
// of round trips: one SELECT of the rows that exist (the whole cost when
// all exist), one multi-row INSERT of the missing ones (INSERT … ON
// CONFLICT DO NOTHING RETURNING on PostgreSQL and SQLite, INSERT …
// RETURNING on MariaDB), and after a lost race one SELECT of the keys lost,
// per 30,000 bound parameters. Missing rows are inserted in one canonical
// order, so that concurrent batches with overlapping keys cannot deadlock
// on each other. On MariaDB one conflicting key fails the whole INSERT; the
// rows that now exist are read and the rest inserted again, so contention
// costs more round trips there, each one making progress.
//
// The lock strategy takes one named lock per distinct lookup, in canonical
// order, inside one transaction (a round trip each), then works as above;
// the serializable strategy runs the same statements in one SERIALIZABLE
// transaction. The guarantees, recovery rules and errors are
// GetOrCreate's; bad input anywhere in the batch is refused before
// anything is written.
func GetOrCreateMany[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) ([]Result[T], error) {
	if len(items) == 0 {
		return nil, nil
	}
	o, err := prepare[T](ctx, ex, "get or create many", table, items[0].Lookup, items[0].Defaults, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (item 0)", err)
	}
	b := &batch{op: o, index: make(map[string]int), of: make([]int, len(items))}
	dcols := o.icols[len(o.lcols):]
	for i, it := range items {
		lcols, lvals, err := o.columns(it.Lookup, nil)
		if err == nil && !slices.Equal(lcols, o.lcols) {
			err = inputError(o.verb, "item %d looks up %v, item 0 looks up %v: every item must use the same lookup columns", i, lcols, o.lcols)
		}
		var cols []string
		var vals []any
		if err == nil {
			cols, vals, err = o.columns(it.Defaults, it.Lookup)
		}
		if err == nil && !slices.Equal(cols, dcols) {
			err = inputError(o.verb, "item %d has defaults %v, item 0 has %v: every item must have the same default columns", i, cols, dcols)
		}
		if err != nil {
			return nil, fmt.Errorf("%w (item %d)", err, i)
		}
		k := encodeKey(lvals)
		j, seen := b.index[k]
		if !seen {
			j = len(b.keys)
			b.index[k] = j
			b.keys = append(b.keys, batchKey{key: k, lvals: lvals, ivals: append(slices.Clone(lvals), vals...), first: i})
		}
		b.of[i] = j
		for _, v := range lvals {
			if v == nil && o.strat == StrategyConstraint && (o.ix == nil || !o.ix.NullsNotDistinct) {
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
	rows := make([]any, len(b.keys)) // *T per key, nil while unknown
	created := make([]bool, len(b.keys))
	body := func(ctx context.Context, tx *Tx) error {
		clear(rows)
		clear(created)
		return runBatch[T](ctx, b, o.h.q, tx, rows, created)
	}
	switch {
	case o.strat == StrategyConstraint && o.h.tx != nil:
		err = body(ctx, o.h.tx)
	case o.strat == StrategyConstraint:
		err = o.db.retry(ctx, opts.Tx, func(ctx context.Context) error { return body(ctx, nil) })
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
			clear(rows)
			clear(created)
			return runBatch[T](ctx, b, tx.tx, tx, rows, created)
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]Result[T], len(items))
	for i, j := range b.of {
		out[i].Row = *rows[j].(*T)
		out[i].Created = created[j] && b.keys[j].first == i
	}
	return out, nil
}

// batch is a planned GetOrCreateMany: the distinct lookups.
type batch struct {
	op    *op
	keys  []batchKey
	index map[string]int // encoded lookup → position in keys
	of    []int          // item → position in keys
}

type batchKey struct {
	key   string
	lvals []any // normalized lookup values, in op.lcols order
	ivals []any // lookup then defaults, in op.icols order
	first int   // the first item with this lookup
}

// encodeKey is a lookup's identity: typed, so that 1 and "1" differ, and
// text equal whether the driver gave string or []byte.
func encodeKey(vals []any) string {
	if len(vals) == 1 {
		if s, ok := vals[0].(string); ok {
			// The common case, without building anything: "s" marks text.
			return "s" + s
		}
	}
	b := make([]byte, 0, 32)
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 'N')
		case string:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case []byte:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case int64:
			b = append(b, 'i')
			b = strconv.AppendInt(b, x, 10)
		case float64:
			if x == float64(int64(x)) {
				b = append(b, 'i')
				b = strconv.AppendInt(b, int64(x), 10)
			} else {
				b = append(b, 'f')
				b = strconv.AppendFloat(b, x, 'g', -1, 64)
			}
		case bool:
			if x {
				b = append(b, "i1"...)
			} else {
				b = append(b, "i0"...)
			}
		case time.Time:
			b = append(b, 't')
			b = strconv.AppendInt(b, x.UnixNano(), 10)
		default:
			b = fmt.Appendf(b, "%T:%v", x, x)
		}
		b = append(b, ';')
	}
	if len(vals) == 1 && b[0] == 's' {
		// Keep one encoding per single text value: the fast path above.
		return "s" + string(b[bytesIndexColon(b)+1:len(b)-1])
	}
	return string(b)
}

func bytesIndexColon(b []byte) int {
	for i, c := range b {
		if c == ':' {
			return i
		}
	}
	return -1
}

// runBatch fills rows and created for every key: read what exists,
// insert what is missing, re-read what was lost, looping while rows
// vanish.
func runBatch[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, rows []any, created []bool) error {
	o := b.op
	missing := make([]int, len(b.keys))
	for i := range missing {
		missing[i] = i
	}
	lock := ""
	// Every turn of the loop either settles keys or means rows vanished
	// (or, on MariaDB, a conflicting key failed the INSERT): only turns
	// that settle nothing count against the bound.
	for stalls := 0; stalls < maxVanished; {
		before := len(missing)
		if err := batchRead[T](ctx, b, q, missing, lock, rows); err != nil {
			return err
		}
		missing = slices.DeleteFunc(missing, func(j int) bool { return rows[j] != nil })
		if len(missing) == 0 {
			return nil
		}
		// Canonical order: two batches inserting overlapping keys wait on
		// each other in the same order, never in a cycle.
		slices.SortFunc(missing, func(x, y int) int { return strings.Compare(b.keys[x].key, b.keys[y].key) })
		lost, err := batchInsert[T](ctx, b, q, tx, missing, rows, created)
		if err != nil {
			return err
		}
		if lost && len(missing) > 0 {
			lock = o.rereadLock(tx)
		}
		missing = slices.DeleteFunc(missing, func(j int) bool { return rows[j] != nil })
		if len(missing) == 0 {
			return nil
		}
		if lost {
			if err := batchRead[T](ctx, b, q, missing, lock, rows); err != nil {
				return err
			}
			missing = slices.DeleteFunc(missing, func(j int) bool { return rows[j] != nil })
			if len(missing) == 0 {
				return nil
			}
			if o.snapshotBlind(tx) {
				return o.errSnapshotBlind()
			}
		}
		if len(missing) == before {
			stalls++
		}
	}
	return fmt.Errorf("racefree: %s: %w (%d attempts)", o.verb, ErrRowVanished, maxVanished)
}

// chunks splits positions into runs of at most maxBatchParams/per.
func chunks(pos []int, per int) [][]int {
	n := max(1, maxBatchParams/max(1, per))
	var out [][]int
	for len(pos) > n {
		out = append(out, pos[:n])
		pos = pos[n:]
	}
	return append(out, pos)
}

// batchRead reads the rows of the keys at pos and stores each in rows.
func batchRead[T any](ctx context.Context, b *batch, q dialect.Querier, pos []int, lock string, rows []any) error {
	o := b.op
	for _, part := range chunks(pos, len(o.lcols)) {
		var sb strings.Builder
		sb.WriteString("SELECT ")
		o.writeCols(&sb, o.lcols)
		sb.WriteString(", ")
		o.writeCols(&sb, o.c.cols)
		sb.WriteString(" FROM ")
		sb.WriteString(o.qtable())
		sb.WriteString(" WHERE ")
		var args []any
		single := len(o.lcols) == 1 && !hasNull(b, part)
		if single {
			q, _ := o.d.Quote(o.lcols[0])
			sb.WriteString(q + " IN (")
		}
		for n, j := range part {
			if n > 0 {
				sb.WriteString(map[bool]string{true: ", ", false: " OR "}[single])
			}
			if single {
				args = append(args, b.keys[j].lvals[0])
				sb.WriteString(o.d.Placeholder(len(args)))
				continue
			}
			sb.WriteString("(")
			for c, col := range o.lcols {
				if c > 0 {
					sb.WriteString(" AND ")
				}
				qc, _ := o.d.Quote(col)
				sb.WriteString(qc)
				if v := b.keys[j].lvals[c]; v == nil {
					sb.WriteString(" IS NULL")
				} else {
					args = append(args, v)
					sb.WriteString(" = " + o.d.Placeholder(len(args)))
				}
			}
			sb.WriteString(")")
		}
		if single {
			sb.WriteString(")")
		}
		sb.WriteString(lock)
		if err := scanBatch[T](ctx, b, q, sb.String(), args, rows, nil); err != nil {
			return err
		}
	}
	return nil
}

func hasNull(b *batch, pos []int) bool {
	for _, j := range pos {
		if slices.Contains(b.keys[j].lvals, nil) {
			return true
		}
	}
	return false
}

// scanBatch runs a query returning the lookup columns and then the
// codec's, and stores each row under its key; created, if not nil, marks
// the keys returned.
func scanBatch[T any](ctx context.Context, b *batch, q dialect.Querier, query string, args []any, rows []any, created []bool) error {
	o := b.op
	rs, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	lk := make([]any, len(o.lcols))
	for rs.Next() {
		row, err := scanInto[T](o.c, prefixScanner{rs, lk})
		if err != nil {
			return fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
		}
		j, ok := b.index[encodeKey(lk)]
		if !ok || rows[j] != nil {
			continue // a row of a lookup we did not ask for (type coercion), or already known
		}
		rows[j] = &row
		if created != nil {
			created[j] = true
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	return nil
}

// prefixScanner scans the lookup columns into pre, then the row.
type prefixScanner struct {
	s   scanner
	pre []any
}

func (p prefixScanner) Scan(dest ...any) error {
	all := make([]any, 0, len(p.pre)+len(dest))
	for i := range p.pre {
		all = append(all, &p.pre[i])
	}
	return p.s.Scan(append(all, dest...)...)
}

// batchInsert inserts the keys at pos, storing returned rows as created.
// lost reports that some key was created by someone else meanwhile.
func batchInsert[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, rows []any, created []bool) (lost bool, err error) {
	o := b.op
	f := o.d.Features()
	for _, part := range chunks(pos, len(o.icols)) {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + o.qtable() + " (")
		o.writeCols(&sb, o.icols)
		sb.WriteString(") VALUES ")
		args := make([]any, 0, len(part)*len(o.icols))
		for n, j := range part {
			if n > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for c := range o.icols {
				if c > 0 {
					sb.WriteString(", ")
				}
				args = append(args, b.keys[j].ivals[c])
				sb.WriteString(o.d.Placeholder(len(args)))
			}
			sb.WriteString(")")
		}
		if o.ix != nil && f.Has(dialect.OnConflict) {
			sb.WriteString(" ON CONFLICT (")
			o.writeCols(&sb, o.lcols)
			sb.WriteString(") DO NOTHING")
		}
		returning := f.Has(dialect.Returning)
		if returning {
			sb.WriteString(" RETURNING ")
			o.writeCols(&sb, o.lcols)
			sb.WriteString(", ")
			o.writeCols(&sb, o.c.cols)
		}
		// Rows go to a scratch copy first: MariaDB streams RETURNING rows
		// as it inserts them, and a duplicate key further on rolls the
		// whole statement back after some rows have arrived.
		got := make([]any, len(rows))
		do := func(ctx context.Context) error {
			clear(got)
			if returning {
				if err := scanBatch[T](ctx, b, q, sb.String(), args, got, nil); err != nil {
					return err
				}
				for _, j := range part {
					if got[j] != nil {
						rows[j], created[j] = got[j], true
					}
				}
				return nil
			}
			if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
				return err
			}
			// MySQL without RETURNING: the statement inserted every row
			// of part or none; read them back as created.
			if err := batchRead[T](ctx, b, q, part, "", rows); err != nil {
				return err
			}
			for _, j := range part {
				created[j] = rows[j] != nil
			}
			return nil
		}
		if tx != nil && o.d.Name() == "postgres" {
			err = tx.savepoint(ctx, do)
		} else {
			err = do(ctx)
		}
		if err != nil {
			ce := o.db.Classify(err)
			if o.ix != nil && violatesIndex(o.t, ce, o.lcols) {
				lost = true // MySQL: the whole statement failed; the caller re-reads
				continue
			}
			return false, fmt.Errorf("racefree: %s: %w", o.verb, ce)
		}
		for _, j := range part {
			if rows[j] == nil {
				lost = true
			}
		}
	}
	return lost, nil
}
