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
func (c *call) batchParams() int {
	if bs, ok := c.d.(dialect.BatchSizer); ok {
		return min(bs.BatchParams(), maxBatchParams)
	}
	return maxBatchParams
}

// chunkRows is how many keys one statement carries at most, at per bound
// values a key. On an embedded engine it is a power of two (see chunks).
func (c *call) chunkRows(per int) int {
	if c.d.Features().Has(dialect.Embedded) {
		n := 1
		for n*2*max(1, per) <= c.batchParams() {
			n *= 2
		}
		return n
	}
	return max(1, c.batchParams()/max(1, per))
}

// chunks splits positions into runs of at most chunkRows(per). On an
// embedded engine (SQLite) the last, shorter run is split further into
// runs of powers of two, so
// that every statement has one of a few shapes, each prepared once (see
// batchQuery): 1,000 keys at 128 a statement are 7 × 128 + 64 + 32 + 8.
func (c *call) chunks(pos []int, per int) [][]int {
	n := c.chunkRows(per)
	out := make([][]int, 0, (len(pos)+n-1)/n+4)
	for len(pos) > 0 {
		size := min(n, len(pos))
		if c.d.Features().Has(dialect.Embedded) {
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
func (c *call) fullChunk(n, per int) bool {
	if c.d.Features().Has(dialect.Embedded) {
		return true // a power of two up to chunkRows
	}
	return n == c.chunkRows(per)
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

func (c *call) batchKey(kind string, mode insertMode, n int) batchSQLKey {
	return batchSQLKey{kind: kind, mode: mode, c: c.codec, lcols: strings.Join(c.lcols, "\x00"), icols: strings.Join(c.icols, "\x00"), n: n}
}

// cachedSQL returns the statement of key, building it with build when it
// is not cached; full says whether it may be cached.
func (c *call) cachedSQL(key batchSQLKey, full bool, build func() string) string {
	if !full {
		return build()
	}
	if q, ok := c.db.batchSQL.Load(key); ok {
		return q.(string)
	}
	q := build()
	c.db.batchSQL.Store(key, q)
	return q
}

// writeReturned writes the columns a batch statement returns: the lookup,
// by which each row is matched to its key, then the codec's.
func (c *call) writeReturned(sb *strings.Builder) {
	c.writeCols(sb, c.lcols)
	sb.WriteString(", ")
	c.writeQuoted(sb, c.codec.quoted)
}

// batchSelectSQL is the SELECT of the keys at part, and its arguments.
func (c *call) batchSelectSQL(b *batch, part []int, lock string) (string, []any) {
	nl := len(c.lcols)
	args := make([]any, 0, len(part)*nl)
	for _, j := range part {
		for _, v := range b.keys[j].lvals {
			if v != nil {
				args = append(args, v)
			}
		}
	}
	full := !b.nulls && c.fullChunk(len(part), nl)
	query := c.cachedSQL(c.batchKey("select"+lock, 0, len(part)), full, func() string {
		var sb strings.Builder
		sb.WriteString("SELECT ")
		c.writeReturned(&sb)
		sb.WriteString(" FROM ")
		sb.WriteString(c.qtable())
		sb.WriteString(" WHERE ")
		n := 0
		if nl == 1 && !b.nulls {
			sb.WriteString(c.t.ident(c.lcols[0]) + " IN (")
			for i := range part {
				if i > 0 {
					sb.WriteString(", ")
				}
				n++
				sb.WriteString(c.d.Placeholder(n))
			}
			sb.WriteString(")")
		} else {
			for i, j := range part {
				if i > 0 {
					sb.WriteString(" OR ")
				}
				sb.WriteString("(")
				for cl, col := range c.lcols {
					if cl > 0 {
						sb.WriteString(" AND ")
					}
					sb.WriteString(c.t.ident(col))
					if b.keys[j].lvals[cl] == nil {
						sb.WriteString(" IS NULL")
						continue
					}
					n++
					sb.WriteString(" = " + c.d.Placeholder(n))
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
func (c *call) batchInsertSQL(b *batch, part []int, mode insertMode) (string, []any) {
	args := make([]any, 0, len(part)*len(c.icols))
	for _, j := range part {
		args = append(args, b.keys[j].ivals...)
	}
	return c.batchInsertText(len(part), mode), args
}

// batchInsertText is the INSERT of n keys.
func (c *call) batchInsertText(n int, mode insertMode) string {
	ni := len(c.icols)
	return c.cachedSQL(c.batchKey("insert", mode, n), c.fullChunk(n, ni), func() string {
		var sb strings.Builder
		sb.WriteString("INSERT ")
		if mode == insertIgnore {
			sb.WriteString("IGNORE ")
		}
		sb.WriteString("INTO " + c.qtable() + " (")
		c.writeCols(&sb, c.icols)
		sb.WriteString(") VALUES ")
		p := 0
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for col := range ni {
				if col > 0 {
					sb.WriteString(", ")
				}
				p++
				sb.WriteString(c.d.Placeholder(p))
			}
			sb.WriteString(")")
		}
		switch mode {
		case insertOnConflict:
			sb.WriteString(" ON CONFLICT (")
			c.writeCols(&sb, c.lcols)
			sb.WriteString(") DO NOTHING")
		case insertOnConflictAny:
			sb.WriteString(" ON CONFLICT DO NOTHING")
		}
		if c.d.Features().Has(dialect.Returning) {
			sb.WriteString(" RETURNING ")
			c.writeReturned(&sb)
		}
		return sb.String()
	})
}

// prepareInserts prepares, on an embedded engine (SQLite) and before a
// transaction begins, the
// INSERTs that will write the keys at pos: inside the transaction a
// statement can only be prepared on the transaction's own connection,
// where it would not outlive it (see batchStmt).
func (c *call) prepareInserts(ctx context.Context, pos []int, mode insertMode) {
	if !c.d.Features().Has(dialect.Embedded) || !c.h.onPool() {
		// On a *Conn the transaction is the Conn's: its statements run as
		// text, and the pool may have no other connection to prepare on
		// (":memory:" has one).
		return
	}
	for _, part := range c.chunks(pos, len(c.icols)) {
		c.batchStmt(ctx, c.db.pool, nil, c.batchInsertText(len(part), mode))
	}
}

// batchQuery runs a batch statement on q. On an embedded engine a
// statement of a
// cached shape runs prepared once per DB (see getorcreate_stmt.go): parsing a
// statement of hundreds of placeholders costs more than running it. The
// returned func releases what batchQuery took; call it after closing the
// rows.
func (c *call) batchQuery(ctx context.Context, q dialect.Querier, tx *Tx, query string, full bool, args []any) (session.Rows, func(), error) {
	if full && c.d.Features().Has(dialect.Embedded) {
		if s, pooled := c.batchStmt(ctx, q, tx, query); s != nil {
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
func (c *call) batchStmt(ctx context.Context, q dialect.Querier, tx *Tx, query string) (s session.Stmt, pooled bool) {
	inTx := tx != nil && q == dialect.Querier(tx.tx) && tx.db == c.db
	if q != dialect.Querier(c.db.pool) && !inTx {
		return nil, false
	}
	if v, ok := c.db.stmts.Load(query); ok {
		s = v.(session.Stmt)
	} else if inTx {
		return nil, false
	} else if s = c.stmt(ctx, query); s == nil {
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
	c := b.call
	for _, part := range c.chunks(pos, len(c.lcols)) {
		query, args := c.batchSelectSQL(b, part, lock)
		full := !b.nulls && c.fullChunk(len(part), len(c.lcols))
		rs, done, err := c.batchQuery(ctx, q, tx, query, full, args)
		if err != nil {
			return c.db.wrapErr(c.verb, err)
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
	c := b.call
	nl := len(c.lcols)
	lk := make([]any, nl)
	dest := make([]any, nl+len(c.codec.cols))
	for i := range lk {
		dest[i] = &lk[i]
	}
	// A struct row is scanned into one scratch value through pointers
	// taken once, then copied to its key: no reflection per row. It is
	// zeroed before each row, so that a field scans as into a new T.
	var scratch, zero T
	if !c.codec.isMap {
		rv := reflect.ValueOf(&scratch).Elem()
		for i, idx := range c.codec.fields {
			dest[nl+i] = rv.FieldByIndex(idx).Addr().Interface()
		}
	}
	var kb []byte
	for rs.Next() {
		n++
		var row T
		if c.codec.isMap {
			row, err = scanInto[T](c.codec, prefixScanner{rs, lk})
		} else {
			scratch = zero
			err = rs.Scan(dest...)
			row = scratch
		}
		if err != nil {
			return n, set, fmt.Errorf("racefree: %s: %w", c.verb, c.db.Classify(err))
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
		return n, set, fmt.Errorf("racefree: %s: %w", c.verb, c.db.Classify(err))
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
