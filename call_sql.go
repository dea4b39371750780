package racefree

import (
	"strings"

	"github.com/racefree/racefree/dialect"
)

// The statements of a call. Their text depends only on the shape of the
// call (table, columns, which lookup values are NULL) and the dialect, so
// it is built once per shape: in a plan, or in DB.sqlCache.

type sqlKey struct {
	kind  string // "select" + lock clause, "insert", "insert-on-conflict"
	c     *codec // identifies the table and the columns read
	lcols string
	icols string
	nulls uint64 // bit i: lookup value i is NULL
}

func (c *call) key(kind string, withInsert bool) sqlKey {
	k := sqlKey{kind: kind, c: c.codec}
	if len(c.lcols) == 1 {
		k.lcols = c.lcols[0]
	} else {
		k.lcols = strings.Join(c.lcols, "\x00")
	}
	if withInsert {
		k.icols = strings.Join(c.icols, "\x00")
	}
	for i, v := range c.lvals {
		if v == nil && i < 64 {
			k.nulls |= 1 << i
		}
	}
	return k
}

// lookupArgs are the bound values of the lookup's WHERE clause: the
// non-NULL lookup values (NULLs are written IS NULL).
func (c *call) lookupArgs() []any {
	if !c.null {
		return c.lvals
	}
	args := make([]any, 0, len(c.lvals))
	for _, v := range c.lvals {
		if v != nil {
			args = append(args, v)
		}
	}
	return args
}

// selectSQL is the lookup query; lock is "" or a locking clause.
func (c *call) selectSQL(lock string) (string, []any) {
	if c.p != nil && lock == "" && !c.null {
		return c.p.sel, c.lvals
	}
	k := c.key("select"+lock, false)
	if q, ok := c.db.sqlCache.Load(k); ok {
		return q.(string), c.lookupArgs()
	}
	q, args := c.buildSelectSQL(lock)
	c.db.sqlCache.Store(k, q)
	return q, args
}

func (c *call) buildSelectSQL(lock string) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	c.writeQuoted(&b, c.codec.quoted)
	b.WriteString(" FROM ")
	b.WriteString(c.qtable())
	args := c.writeWhere(&b, 0)
	b.WriteString(lock)
	return b.String(), args
}

// writeCols writes cols, columns of the table that planCall checked the
// dialect can quote, quoted and separated by commas.
func (c *call) writeCols(b *strings.Builder, cols []string) {
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.t.ident(col))
	}
}

// writeQuoted writes names already quoted, separated by commas.
func (c *call) writeQuoted(b *strings.Builder, quoted []string) {
	for i, q := range quoted {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q)
	}
}

// writeWhere writes the lookup's WHERE clause, NULLs as IS NULL, with
// placeholders numbered after n, and returns the arguments.
func (c *call) writeWhere(b *strings.Builder, n int) []any {
	b.WriteString(" WHERE ")
	args := make([]any, 0, len(c.lvals))
	for i, col := range c.lcols {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(c.t.ident(col))
		if c.lvals[i] == nil {
			b.WriteString(" IS NULL")
			continue
		}
		args = append(args, c.lvals[i])
		b.WriteString(" = ")
		b.WriteString(c.d.Placeholder(n + len(args)))
	}
	return args
}

// insertSQL is the INSERT of the lookup and defaults; onConflict adds ON
// CONFLICT (lookup) DO NOTHING where the engine has it. RETURNING is added
// where the engine has it.
func (c *call) insertSQL(onConflict bool) string {
	if c.p != nil && !c.null && sameCols(c.icols, c.p.icols) {
		if onConflict {
			return c.p.ins[1]
		}
		return c.p.ins[0]
	}
	k := c.key(map[bool]string{false: "insert", true: "insert-on-conflict"}[onConflict], true)
	if q, ok := c.db.sqlCache.Load(k); ok {
		return q.(string)
	}
	q := c.buildInsertSQL(onConflict)
	c.db.sqlCache.Store(k, q)
	return q
}

func (c *call) buildInsertSQL(onConflict bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(c.qtable())
	b.WriteString(" (")
	c.writeCols(&b, c.icols)
	b.WriteString(") VALUES (")
	for i := range c.icols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.d.Placeholder(i + 1))
	}
	b.WriteString(")")
	f := c.d.Features()
	if onConflict && f.Has(dialect.OnConflict) {
		// No conflict target: a conflict on any unique index does nothing,
		// and the lookup's re-read then tells a lost race (the row is
		// there) from a clash with another row (see createOrFind).
		b.WriteString(" ON CONFLICT DO NOTHING")
	}
	if f.Has(dialect.Returning) {
		b.WriteString(" RETURNING ")
		c.writeQuoted(&b, c.codec.quoted)
	}
	return b.String()
}

// updateSQL is UPDATE t SET cols = … WHERE lookup, with RETURNING where
// the engine has UPDATE … RETURNING.
func (c *call) updateSQL(cols []string, vals []any, returning bool) (string, []any) {
	var b strings.Builder
	b.WriteString("UPDATE ")
	b.WriteString(c.qtable())
	b.WriteString(" SET ")
	args := make([]any, 0, len(vals)+len(c.lvals))
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.t.ident(col))
		b.WriteString(" = ")
		args = append(args, vals[i])
		b.WriteString(c.d.Placeholder(len(args)))
	}
	args = append(args, c.writeWhere(&b, len(args))...)
	if returning {
		b.WriteString(" RETURNING ")
		c.writeQuoted(&b, c.codec.quoted)
	}
	return b.String(), args
}

// insertSQLNoReturning is the INSERT of lookup and values without ON
// CONFLICT or RETURNING.
func (c *call) insertSQLNoReturning() string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(c.qtable())
	b.WriteString(" (")
	c.writeCols(&b, c.icols)
	b.WriteString(") VALUES (")
	for i := range c.icols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.d.Placeholder(i + 1))
	}
	b.WriteString(")")
	return b.String()
}

// upsertSQL is INSERT … ON CONFLICT (lookup) DO UPDATE SET values …
// RETURNING the row and inserted, the dialect's expression that tells
// whether the row was inserted.
func (c *call) upsertSQL(inserted string) string {
	var b strings.Builder
	b.WriteString(c.insertSQLNoReturning())
	b.WriteString(" ON CONFLICT (")
	c.writeCols(&b, c.lcols)
	b.WriteString(") DO UPDATE SET ")
	for i, col := range c.setCols() {
		if i > 0 {
			b.WriteString(", ")
		}
		qc := c.t.ident(col)
		b.WriteString(qc + " = EXCLUDED." + qc)
	}
	b.WriteString(" RETURNING ")
	c.writeQuoted(&b, c.codec.quoted)
	b.WriteString(", ")
	b.WriteString(inserted)
	return b.String()
}

// deleteSQL is Unlink's DELETE of the rows that match the lookup.
func (c *call) deleteSQL() (string, []any) {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(c.qtable())
	args := c.writeWhere(&b, 0)
	return b.String(), args
}

// linkSQL is Link's INSERT: no RETURNING (a join row has nothing to read
// back), ON CONFLICT DO NOTHING where the engine has it.
func (c *call) linkSQL() string {
	query := c.insertSQLNoReturning()
	if c.d.Features().Has(dialect.OnConflict) {
		query += " ON CONFLICT DO NOTHING"
	}
	return query
}
