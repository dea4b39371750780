package racefree

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

// maxBatchParams bounds the bound parameters of one batch statement,
// below SQLite's default limit of 32766 (PostgreSQL and MySQL allow
// 65535); a dialect may ask for fewer (dialect.BatchSizer).
const maxBatchParams = 30000

// batchParams is the bound parameters one batch statement carries at most.
func (o *op) batchParams() int {
	if bs, ok := o.d.(dialect.BatchSizer); ok {
		return min(bs.BatchParams(), maxBatchParams)
	}
	return maxBatchParams
}

// chunkRows is how many keys one statement carries at most, at per bound
// values a key. On an embedded engine it is a power of two (see chunks).
func (o *op) chunkRows(per int) int {
	if o.d.Features().Has(dialect.Embedded) {
		n := 1
		for n*2*max(1, per) <= o.batchParams() {
			n *= 2
		}
		return n
	}
	return max(1, o.batchParams()/max(1, per))
}

// chunks splits positions into runs of at most chunkRows(per). On an
// embedded engine (SQLite) the last, shorter run is split further into
// runs of powers of two, so
// that every statement has one of a few shapes, each prepared once (see
// batchQuery): 1,000 keys at 128 a statement are 7 × 128 + 64 + 32 + 8.
func (o *op) chunks(pos []int, per int) [][]int {
	n := o.chunkRows(per)
	out := make([][]int, 0, (len(pos)+n-1)/n+4)
	for len(pos) > 0 {
		size := min(n, len(pos))
		if o.d.Features().Has(dialect.Embedded) {
			for size&(size-1) != 0 {
				size &= size - 1 // down to the highest bit
			}
		}
		out = append(out, pos[:size])
		pos = pos[size:]
	}
	return out
}

// fullChunk reports whether a statement of n keys has a shape worth
// caching (and, on SQLite, preparing): their number is bounded by the
// tables and lookup shapes in use, while a cache of every size would grow
// with every batch size seen.
func (o *op) fullChunk(n, per int) bool {
	if o.d.Features().Has(dialect.Embedded) {
		return true // a power of two up to chunkRows
	}
	return n == o.chunkRows(per)
}

// insertMode is how a batch INSERT treats rows that exist.
type insertMode uint8

const (
	insertPlain         insertMode = iota // fail on any conflict (MySQL, MariaDB after IGNORE, no unique index)
	insertOnConflict                      // ON CONFLICT (lookup) DO NOTHING: PostgreSQL
	insertOnConflictAny                   // ON CONFLICT DO NOTHING: SQLite, PostgreSQL in a snapshot (see batchMode)
	insertIgnore                          // INSERT IGNORE: MariaDB; see getorcreatemany_ignore.go
)

// batchSQLKey names one statement shape of a batch; see fullChunk.
type batchSQLKey struct {
	kind  string // "select" + lock clause, or "insert"
	mode  insertMode
	c     *codec // the table and the columns read
	lcols string
	icols string
	n     int // keys in the statement
}

func (o *op) batchKey(kind string, mode insertMode, n int) batchSQLKey {
	return batchSQLKey{kind: kind, mode: mode, c: o.c, lcols: strings.Join(o.lcols, "\x00"), icols: strings.Join(o.icols, "\x00"), n: n}
}

// cachedSQL returns the statement of key, building it with build when it
// is not cached; full says whether it may be cached.
func (o *op) cachedSQL(key batchSQLKey, full bool, build func() string) string {
	if !full {
		return build()
	}
	if q, ok := o.db.batchSQL.Load(key); ok {
		return q.(string)
	}
	q := build()
	o.db.batchSQL.Store(key, q)
	return q
}

// writeReturned writes the columns a batch statement returns: the lookup,
// by which each row is matched to its key, then the codec's.
func (o *op) writeReturned(sb *strings.Builder) {
	o.writeCols(sb, o.lcols)
	sb.WriteString(", ")
	o.writeQuoted(sb, o.c.quoted)
}

// batchSelectSQL is the SELECT of the keys at part, and its arguments.
func (o *op) batchSelectSQL(b *batch, part []int, lock string) (string, []any) {
	nl := len(o.lcols)
	args := make([]any, 0, len(part)*nl)
	for _, j := range part {
		for _, v := range b.keys[j].lvals {
			if v != nil {
				args = append(args, v)
			}
		}
	}
	full := !b.nulls && o.fullChunk(len(part), nl)
	query := o.cachedSQL(o.batchKey("select"+lock, 0, len(part)), full, func() string {
		var sb strings.Builder
		sb.WriteString("SELECT ")
		o.writeReturned(&sb)
		sb.WriteString(" FROM ")
		sb.WriteString(o.qtable())
		sb.WriteString(" WHERE ")
		n := 0
		if nl == 1 && !b.nulls {
			sb.WriteString(o.t.ident(o.lcols[0]) + " IN (")
			for i := range part {
				if i > 0 {
					sb.WriteString(", ")
				}
				n++
				sb.WriteString(o.d.Placeholder(n))
			}
			sb.WriteString(")")
		} else {
			for i, j := range part {
				if i > 0 {
					sb.WriteString(" OR ")
				}
				sb.WriteString("(")
				for c, col := range o.lcols {
					if c > 0 {
						sb.WriteString(" AND ")
					}
					sb.WriteString(o.t.ident(col))
					if b.keys[j].lvals[c] == nil {
						sb.WriteString(" IS NULL")
						continue
					}
					n++
					sb.WriteString(" = " + o.d.Placeholder(n))
				}
				sb.WriteString(")")
			}
		}
		sb.WriteString(lock)
		return sb.String()
	})
	return query, args
}

// batchInsertSQL is the INSERT of the keys at part, and its arguments.
func (o *op) batchInsertSQL(b *batch, part []int, mode insertMode) (string, []any) {
	args := make([]any, 0, len(part)*len(o.icols))
	for _, j := range part {
		args = append(args, b.keys[j].ivals...)
	}
	return o.batchInsertText(len(part), mode), args
}

// batchInsertText is the INSERT of n keys.
func (o *op) batchInsertText(n int, mode insertMode) string {
	ni := len(o.icols)
	return o.cachedSQL(o.batchKey("insert", mode, n), o.fullChunk(n, ni), func() string {
		var sb strings.Builder
		sb.WriteString("INSERT ")
		if mode == insertIgnore {
			sb.WriteString("IGNORE ")
		}
		sb.WriteString("INTO " + o.qtable() + " (")
		o.writeCols(&sb, o.icols)
		sb.WriteString(") VALUES ")
		p := 0
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for c := range ni {
				if c > 0 {
					sb.WriteString(", ")
				}
				p++
				sb.WriteString(o.d.Placeholder(p))
			}
			sb.WriteString(")")
		}
		switch mode {
		case insertOnConflict:
			sb.WriteString(" ON CONFLICT (")
			o.writeCols(&sb, o.lcols)
			sb.WriteString(") DO NOTHING")
		case insertOnConflictAny:
			sb.WriteString(" ON CONFLICT DO NOTHING")
		}
		if o.d.Features().Has(dialect.Returning) {
			sb.WriteString(" RETURNING ")
			o.writeReturned(&sb)
		}
		return sb.String()
	})
}

// prepareInserts prepares, on an embedded engine (SQLite) and before a
// transaction begins, the
// INSERTs that will write the keys at pos: inside the transaction a
// statement can only be prepared on the transaction's own connection,
// where it would not outlive it (see batchStmt).
func (o *op) prepareInserts(ctx context.Context, pos []int, mode insertMode) {
	if !o.d.Features().Has(dialect.Embedded) || !o.h.onPool() {
		// On a *Conn the transaction is the Conn's: its statements run as
		// text, and the pool may have no other connection to prepare on
		// (":memory:" has one).
		return
	}
	for _, part := range o.chunks(pos, len(o.icols)) {
		o.batchStmt(ctx, o.db.pool, nil, o.batchInsertText(len(part), mode))
	}
}

// batchQuery runs a batch statement on q. On an embedded engine a
// statement of a
// cached shape runs prepared once per DB (see getorcreate_stmt.go): parsing a
// statement of hundreds of placeholders costs more than running it. The
// returned func releases what batchQuery took; call it after closing the
// rows.
func (o *op) batchQuery(ctx context.Context, q dialect.Querier, tx *Tx, query string, full bool, args []any) (session.Rows, func(), error) {
	if full && o.d.Features().Has(dialect.Embedded) {
		if s, pooled := o.batchStmt(ctx, q, tx, query); s != nil {
			rs, err := s.Query(ctx, args...)
			if pooled {
				return rs, func() {}, err
			}
			return rs, func() { s.Close() }, err
		}
	}
	rs, err := q.Query(ctx, query, args...)
	return rs, func() {}, err
}

// batchStmt returns query prepared for q when q is the pool or a
// transaction on it, nil otherwise (a *Conn: its statements would outlive
// it); pooled reports that it is the DB's own statement, never closed by
// the caller. In a transaction it only uses a statement the pool already
// has: preparing one would take a second connection from the pool while
// this one holds the write lock, and with every pooled connection waiting
// for that lock, none would come.
func (o *op) batchStmt(ctx context.Context, q dialect.Querier, tx *Tx, query string) (s session.Stmt, pooled bool) {
	inTx := tx != nil && q == dialect.Querier(tx.tx) && tx.db == o.db
	if q != dialect.Querier(o.db.pool) && !inTx {
		return nil, false
	}
	if v, ok := o.db.stmts.Load(query); ok {
		s = v.(session.Stmt)
	} else if inTx {
		return nil, false
	} else if s = o.stmt(ctx, query); s == nil {
		return nil, false // the error will show when the text runs
	}
	if !inTx {
		return s, true
	}
	ts, ok := tx.tx.(session.TxStmter)
	if !ok {
		return nil, false
	}
	// Prepared once per connection: database/sql remembers it on s.
	return ts.TxStmt(ctx, s), false
}

// batchRead reads the rows of the keys at pos into res; tx is the
// transaction q belongs to, or nil.
func batchRead[T any](ctx context.Context, b *batch, q dialect.Querier, tx *Tx, pos []int, lock string, res *batchRows[T]) error {
	o := b.op
	for _, part := range o.chunks(pos, len(o.lcols)) {
		query, args := o.batchSelectSQL(b, part, lock)
		full := !b.nulls && o.fullChunk(len(part), len(o.lcols))
		rs, done, err := o.batchQuery(ctx, q, tx, query, full, args)
		if err != nil {
			return o.db.wrapErr(o.verb, err)
		}
		_, _, err = scanBatch(b, rs, res, false)
		done()
		if err != nil {
			return err
		}
	}
	return nil
}

// scanBatch reads rows that return the lookup columns and then the
// codec's, and stores each under its key unless the key is known;
// created marks them created. It closes rs, and returns how many rows
// came and the keys it set.
func scanBatch[T any](b *batch, rs session.Rows, res *batchRows[T], created bool) (n int, set []int, err error) {
	defer rs.Close()
	o := b.op
	nl := len(o.lcols)
	lk := make([]any, nl)
	dest := make([]any, nl+len(o.c.cols))
	for i := range lk {
		dest[i] = &lk[i]
	}
	// A struct row is scanned into one scratch value through pointers
	// taken once, then copied to its key: no reflection per row. It is
	// zeroed before each row, so that a field scans as into a new T.
	var scratch, zero T
	if !o.c.isMap {
		rv := reflect.ValueOf(&scratch).Elem()
		for i, idx := range o.c.fields {
			dest[nl+i] = rv.FieldByIndex(idx).Addr().Interface()
		}
	}
	var kb []byte
	for rs.Next() {
		n++
		var row T
		if o.c.isMap {
			row, err = scanInto[T](o.c, prefixScanner{rs, lk})
		} else {
			scratch = zero
			err = rs.Scan(dest...)
			row = scratch
		}
		if err != nil {
			return n, set, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
		}
		kb = appendKey(kb[:0], lk)
		j, ok := b.index[string(kb)]
		if !ok {
			res.unmatched++ // the engine equated values Go tells apart
			continue
		}
		if res.known[j] {
			continue
		}
		res.row[j], res.known[j], res.created[j] = row, true, created
		set = append(set, j)
	}
	if err := rs.Err(); err != nil {
		return n, set, fmt.Errorf("racefree: %s: %w", o.verb, o.db.Classify(err))
	}
	return n, set, nil
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
