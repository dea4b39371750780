package pgdialect

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.SchemaReader = (*Dialect)(nil)

// ReadTable reads table's columns and its unique indexes from pg_catalog.
// The name resolves like it does in racefree's statements: quoted, so case
// matters, and through search_path when it has no schema.
func (d *Dialect) ReadTable(ctx context.Context, q dialect.Querier, table string) (*dialect.Table, error) {
	quoted, err := d.Quote(table)
	if err != nil {
		return nil, err
	}
	var oid sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT to_regclass($1)::oid", quoted).Scan(&oid); err != nil {
		return nil, fmt.Errorf("pgdialect: read table %s: %w", table, err)
	}
	if !oid.Valid {
		return nil, fmt.Errorf("pgdialect: read table %s: %w", table, dialect.ErrNoTable)
	}
	t := &dialect.Table{Name: table}
	rows, err := q.QueryContext(ctx, `SELECT a.attname, lower(format_type(a.atttypid, a.atttypmod)), NOT a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid.Int64)
	if err != nil {
		return nil, fmt.Errorf("pgdialect: read columns of %s: %w", table, err)
	}
	for rows.Next() {
		var c dialect.Column
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.HasDefault); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgdialect: read columns of %s: %w", table, err)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("pgdialect: read columns of %s: %w", table, err)
	}
	nnd := "false"
	if d.versionNum >= 150000 && !d.cockroachDB {
		nnd = "ix.indnullsnotdistinct"
	}
	// Partial, expression and deferrable unique indexes cannot arbitrate
	// ON CONFLICT for a plain equality lookup, so they are left out.
	rows, err = q.QueryContext(ctx, `SELECT i.relname, ix.indisprimary, `+nnd+`,
       (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum)
FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
WHERE ix.indrelid = $1 AND ix.indisunique AND ix.indimmediate AND ix.indisvalid
  AND ix.indpred IS NULL AND ix.indexprs IS NULL AND NOT (0 = ANY(ix.indkey::int2[]))
ORDER BY ix.indisprimary DESC, i.relname`, oid.Int64)
	if err != nil {
		return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
	}
	for rows.Next() {
		var ix dialect.UniqueIndex
		var cols string
		if err := rows.Scan(&ix.Name, &ix.Primary, &ix.NullsNotDistinct, &cols); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
		}
		ix.Columns = strings.Split(cols, ",")
		t.Unique = append(t.Unique, ix)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
