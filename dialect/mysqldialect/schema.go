package mysqldialect

import (
	"context"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.SchemaReader = (*Dialect)(nil)

// ReadTable reads table's columns and unique indexes from
// information_schema, in the current database unless table names one
// ("db.table").
func (d *Dialect) ReadTable(ctx context.Context, q dialect.Querier, table string) (*dialect.Table, error) {
	parts, err := dialect.ValidateIdent(table, dialect.MaxIdentLen)
	if err != nil {
		return nil, err
	}
	schemaExpr, args := "DATABASE()", []any{parts[len(parts)-1]}
	if len(parts) == 2 {
		schemaExpr, args = "?", []any{parts[0], parts[1]}
	}
	t := &dialect.Table{Name: table}
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), IS_NULLABLE = 'YES',
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
	rows, err = q.QueryContext(ctx, `SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ','),
       SUM(SUB_PART IS NOT NULL OR COLUMN_NAME IS NULL)
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = `+schemaExpr+` AND TABLE_NAME = ? AND NON_UNIQUE = 0
GROUP BY INDEX_NAME ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
	}
	for rows.Next() {
		var ix dialect.UniqueIndex
		var cols string
		var partial int
		if err := rows.Scan(&ix.Name, &cols, &partial); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
		}
		if partial > 0 {
			continue
		}
		ix.Primary = ix.Name == "PRIMARY"
		ix.Columns = strings.Split(cols, ",")
		t.Unique = append(t.Unique, ix)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("mysqldialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
