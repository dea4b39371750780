package racefree

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/racefree/racefree/dialect"
)

// tableInfo is a table as racefree uses it: its catalog facts and its
// names, quoted once.
type tableInfo struct {
	*dialect.Table
	// quoted is the table's name quoted by the dialect.
	quoted string
	// cols are the column names quoted by the dialect; a name the dialect
	// cannot quote is absent, and refused when a call uses it.
	cols map[string]string
	// fams are the columns' type families (see typeFamily), for checking
	// values without parsing the declared type on every call.
	fams map[string]int
	// floats flags the floats the engine cannot store as they are
	// (famNoNaN, famNoInf), for every column: see valueFam.
	floats int
}

// ident returns the quoted name of column col, which the caller has
// checked is a quotable column of t.
func (t *tableInfo) ident(col string) string { return t.cols[col] }

// table returns the catalog facts of table, read once per DB and cached.
// The read runs on q, so inside a transaction it sees the transaction's
// own DDL. On the pool, calls that find the table missing at once share
// one read; a caller whose context ends stops waiting, and when the shared
// read fails (its own caller's context may have ended) each caller reads
// for itself, so that no call gets another's error.
func (db *DB) table(ctx context.Context, q dialect.Querier, verb, table string) (*tableInfo, error) {
	if v, ok := db.schemas.Load(table); ok {
		return v.(*tableInfo), nil
	}
	if !db.onPool(q) {
		return db.readTable(ctx, q, verb, table)
	}
	ran := false
	shared := db.schemaReads.DoChan(table, func() (any, error) {
		ran = true
		return db.readTable(ctx, q, verb, table)
	})
	select {
	case r := <-shared:
		if r.Err == nil {
			return r.Val.(*tableInfo), nil
		}
		if ran {
			return nil, r.Err
		}
	case <-ctx.Done():
		return nil, db.wrapErr(verb+": read catalog", ctx.Err())
	}
	return db.readTable(ctx, q, verb, table)
}

// readTable reads table's catalog facts on q and caches them.
func (db *DB) readTable(ctx context.Context, q dialect.Querier, verb, table string) (*tableInfo, error) {
	quoted, err := db.d.Quote(table)
	if err != nil {
		return nil, invalidInput(verb, err)
	}
	sr, ok := db.d.(dialect.SchemaReader)
	if !ok {
		return nil, fmt.Errorf("racefree: %s: the %s dialect cannot read the catalog", verb, db.d.Name())
	}
	t, err := sr.ReadTable(ctx, q, table)
	if err != nil && db.onPool(q) {
		err = db.retryIdempotent(ctx, err, func(ctx context.Context) (err error) {
			t, err = sr.ReadTable(ctx, q, table)
			return err
		})
	}
	if errors.Is(err, dialect.ErrNoTable) {
		return nil, inputError(verb, "table %q does not exist", table)
	}
	if err != nil {
		return nil, db.wrapErr(verb+": read catalog", err)
	}
	ti := &tableInfo{Table: t, quoted: quoted, cols: make(map[string]string, len(t.Columns)), fams: make(map[string]int, len(t.Columns)),
		floats: floatFlags(db.d)}
	for _, c := range t.Columns {
		if qc, err := db.d.QuoteIdent(c.Name); err == nil {
			ti.cols[c.Name] = qc
		}
		ti.fams[c.Name] = typeFamily(c.Type)
	}
	v, _ := db.schemas.LoadOrStore(table, ti)
	return v.(*tableInfo), nil
}

// ForgetSchema drops what racefree has cached about table's columns and
// unique indexes, or about every table when table is "". Call it after
// altering a table that racefree operations use while the DB stays open.
func (db *DB) ForgetSchema(table string) {
	// Plans and statement texts point at the cached catalog entries
	// (through their codecs); they are cheap to build again.
	db.plans.forget()
	db.sqlCache.Clear()
	db.batchSQL.Clear()
	if table == "" {
		db.schemas.Clear()
		db.codecs.Clear()
		return
	}
	if t, ok := db.schemas.LoadAndDelete(table); ok {
		db.codecs.Range(func(k, _ any) bool {
			if k.(codecKey).t == t.(*tableInfo) {
				db.codecs.Delete(k)
			}
			return true
		})
	}
}

// coveringIndex returns the unique index whose columns are exactly cols (in
// any order), preferring one that treats NULLs as equal.
func coveringIndex(t *dialect.Table, cols []string) *dialect.UniqueIndex {
	var found *dialect.UniqueIndex
	for i := range t.Unique {
		ix := &t.Unique[i]
		if sameSet(ix.Columns, cols) && (found == nil || ix.NullsNotDistinct && !found.NullsNotDistinct) {
			found = ix
		}
	}
	return found
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// violatesIndex reports whether the unique violation ce is of an index
// whose columns are exactly cols: a lost race on the lookup, as opposed to a
// conflict on some other unique index, which is the caller's to see.
func violatesIndex(t *dialect.Table, ce *dialect.Error, cols []string) bool {
	if ce == nil || ce.Class != dialect.ClassUniqueViolation {
		return false
	}
	if len(ce.Columns) > 0 { // SQLite names "table.column"s
		named := make([]string, len(ce.Columns))
		for i, c := range ce.Columns {
			named[i] = c
			if j := lastDot(c); j >= 0 {
				named[i] = c[j+1:]
			}
		}
		return sameSet(named, cols)
	}
	for _, ix := range t.Unique {
		if ix.Name == ce.Constraint && sameSet(ix.Columns, cols) {
			return true
		}
	}
	return false
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
