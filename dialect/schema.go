package dialect

import "context"

// Column is one column of a table as the engine's catalog describes it.
type Column struct {
	Name string
	// Type is the declared type as the catalog spells it, lower-cased
	// ("bigint", "character varying", "varchar(191)", "text").
	Type string
	// Nullable reports whether the column accepts NULL.
	Nullable bool
	// HasDefault reports whether the column has a default or is generated
	// by the engine (identity, auto-increment, rowid alias), so an INSERT
	// may leave it out.
	HasDefault bool
}

// UniqueIndex is a unique index or constraint (the primary key included)
// whose every part is a plain column: expression and partial indexes are
// left out, because they cannot decide an equality lookup on their own.
type UniqueIndex struct {
	// Name is the index or constraint name, as a unique violation reports
	// it (PostgreSQL, MySQL). SQLite's automatic indexes have names too.
	Name string
	// Columns in index order.
	Columns []string
	// Primary marks the primary key.
	Primary bool
	// NullsNotDistinct: the index treats NULLs as equal (PostgreSQL 15
	// UNIQUE NULLS NOT DISTINCT), so a NULL lookup value is still unique.
	NullsNotDistinct bool
}

// Table is what racefree needs to know about a table.
type Table struct {
	Name    string
	Columns []Column
	Unique  []UniqueIndex
}

// Column returns the column called name (exact match), or false.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// SchemaReader is implemented by dialects that can read a table's columns
// and unique indexes from the engine's catalog. All three racefree dialects
// do.
type SchemaReader interface {
	// ReadTable describes table ("name" or "schema.name", validated). It
	// returns an error wrapping ErrNoTable when the table does not exist.
	ReadTable(ctx context.Context, q Querier, table string) (*Table, error)
}

// ErrNoTable is returned by ReadTable for a table the catalog does not know.
var ErrNoTable = errNoTable{}

type errNoTable struct{}

func (errNoTable) Error() string { return "racefree: no such table" }
