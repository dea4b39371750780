package sqlitedialect

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.SchemaReader = (*Dialect)(nil)

// ReadTable reads table's columns and unique indexes with the table_info,
// index_list and index_info pragmas.
func (d *Dialect) ReadTable(ctx context.Context, q dialect.Querier, table string) (*dialect.Table, error) {
	parts, err := identRules.SplitQualified(table)
	if err != nil {
		return nil, err
	}
	schema, name := "main", parts[len(parts)-1]
	if len(parts) == 2 {
		schema = parts[0]
	}
	t := &dialect.Table{Name: table}
	rows, err := q.Query(ctx, `SELECT name, lower(type), "notnull" = 0 AND pk = 0, dflt_value IS NOT NULL OR "notnull" = 0, pk
FROM pragma_table_xinfo(?, ?) WHERE hidden IN (0, 2, 3) ORDER BY cid`, name, schema)
	if err != nil {
		return nil, fmt.Errorf("sqlitedialect: read columns of %s: %w", table, err)
	}
	var pk []string
	var pkTypes []string
	pkOrder := map[int]string{}
	for rows.Next() {
		var c dialect.Column
		var pos int
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.HasDefault, &pos); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlitedialect: read columns of %s: %w", table, err)
		}
		if pos > 0 {
			pkOrder[pos] = c.Name
			pkTypes = append(pkTypes, c.Type)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlitedialect: read columns of %s: %w", table, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("sqlitedialect: read table %s: %w", table, dialect.ErrNoTable)
	}
	for i := 1; i <= len(pkOrder); i++ {
		pk = append(pk, pkOrder[i])
	}
	if len(pk) == 1 && pkTypes[0] == "integer" {
		// An INTEGER PRIMARY KEY is the rowid: the engine assigns it, and
		// it has no entry in index_list.
		for i := range t.Columns {
			if t.Columns[i].Name == pk[0] {
				t.Columns[i].HasDefault = true
			}
		}
		t.Unique = append(t.Unique, dialect.UniqueIndex{Name: "PRIMARY", Columns: pk, Primary: true})
	}
	// One row per index part: a column name may contain any character,
	// a comma included, so the parts are not concatenated.
	rows, err = q.Query(ctx, `SELECT l.name, l.origin = 'pk', i.name IS NULL, coalesce(i.name, '')
FROM pragma_index_list(?, ?) l JOIN pragma_index_info(l.name, ?) i
WHERE l."unique" = 1 AND l.partial = 0 ORDER BY l.origin = 'pk' DESC, l.name, i.seqno`, name, schema, schema)
	if err != nil {
		return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
	}
	var ix *dialect.UniqueIndex
	expr := false // the current index has an expression part, which has no column name
	flush := func() {
		if ix != nil && !expr {
			t.Unique = append(t.Unique, *ix)
		}
	}
	for rows.Next() {
		var ixName, col string
		var primary, isExpr bool
		if err := rows.Scan(&ixName, &primary, &isExpr, &col); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
		}
		if ix == nil || ix.Name != ixName {
			flush()
			ix, expr = &dialect.UniqueIndex{Name: ixName, Primary: primary}, false
		}
		expr = expr || isExpr
		ix.Columns = append(ix.Columns, col)
	}
	flush()
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
