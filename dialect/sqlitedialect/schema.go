package sqlitedialect

import (
	"context"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.SchemaReader = (*Dialect)(nil)

// ReadTable reads table's columns and unique indexes with the table_info,
// index_list and index_info pragmas.
func (d *Dialect) ReadTable(ctx context.Context, q dialect.Querier, table string) (*dialect.Table, error) {
	parts, err := dialect.ValidateIdent(table, dialect.MaxIdentLen)
	if err != nil {
		return nil, err
	}
	schema, name := "main", parts[len(parts)-1]
	if len(parts) == 2 {
		schema = parts[0]
	}
	t := &dialect.Table{Name: table}
	rows, err := q.QueryContext(ctx, `SELECT name, lower(type), "notnull" = 0 AND pk = 0, dflt_value IS NOT NULL OR "notnull" = 0, pk
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
	rows, err = q.QueryContext(ctx, `SELECT l.name, l.origin = 'pk', group_concat(coalesce(i.name, ''), ',')
FROM pragma_index_list(?, ?) l JOIN pragma_index_info(l.name, ?) i
WHERE l."unique" = 1 AND l.partial = 0 GROUP BY l.name ORDER BY l.origin = 'pk' DESC, l.name`, name, schema, schema)
	if err != nil {
		return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
	}
	for rows.Next() {
		var ix dialect.UniqueIndex
		var cols string
		if err := rows.Scan(&ix.Name, &ix.Primary, &cols); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
		}
		ix.Columns = strings.Split(cols, ",")
		expr := false
		for _, c := range ix.Columns {
			expr = expr || c == "" // an expression part has no column name
		}
		if !expr {
			t.Unique = append(t.Unique, ix)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlitedialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
