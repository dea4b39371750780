package mysqldialect

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.SchemaReader = (*Dialect)(nil)

// ReadTable reads table's columns and unique indexes from
// information_schema, in the current database unless table names one
// ("db.table").
func (d *Dialect) ReadTable(ctx context.Context, q dialect.Querier, table string) (*dialect.Table, error) {
	parts, err := identRules.SplitQualified(table)
	if err != nil {
		return nil, err
	}
	schemaExpr, args := "DATABASE()", []any{parts[len(parts)-1]}
	if len(parts) == 2 {
		schemaExpr, args = "?", []any{parts[0], parts[1]}
	}
	t := &dialect.Table{Name: table}
	rows, err := q.Query(ctx, `SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), IS_NULLABLE = 'YES',
       COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%' OR EXTRA LIKE '%GENERATED%' OR IS_NULLABLE = 'YES'
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = `+schemaExpr+` AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("mysqldialect: read columns of %s: %w", table, err)
	}
	for rows.Next() {
		var c dialect.Column
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.HasDefault); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mysqldialect: read columns of %s: %w", table, err)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("mysqldialect: read columns of %s: %w", table, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("mysqldialect: read table %s: %w", table, dialect.ErrNoTable)
	}
	// A unique prefix index (SUB_PART set) constrains only a prefix of the
	// column: it is stricter than the lookup and so cannot arbitrate it.
	// One row per index part: a column name may contain any character,
	// a comma included, so the parts are not concatenated.
	rows, err = q.Query(ctx, `SELECT INDEX_NAME, COALESCE(COLUMN_NAME, ''), COLUMN_NAME IS NULL OR SUB_PART IS NOT NULL
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = `+schemaExpr+` AND TABLE_NAME = ? AND NON_UNIQUE = 0
ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
	}
	var ix *dialect.UniqueIndex
	partial := false // the current index has a prefix or expression part
	flush := func() {
		if ix != nil && !partial {
			t.Unique = append(t.Unique, *ix)
		}
	}
	for rows.Next() {
		var name, col string
		var part bool
		if err := rows.Scan(&name, &col, &part); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
		}
		if ix == nil || ix.Name != name {
			flush()
			ix, partial = &dialect.UniqueIndex{Name: name, Primary: name == "PRIMARY"}, false
		}
		partial = partial || part
		ix.Columns = append(ix.Columns, col)
	}
	flush()
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
