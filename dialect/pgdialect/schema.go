package pgdialect

import (
	"context"
	"database/sql"
	"fmt"

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
	if err := q.QueryRow(ctx, "SELECT to_regclass($1)::oid", quoted).Scan(&oid); err != nil {
		return nil, fmt.Errorf("pgdialect: read table %s: %w", table, err)
	}
	if !oid.Valid {
		return nil, fmt.Errorf("pgdialect: read table %s: %w", table, dialect.ErrNoTable)
	}
	t := &dialect.Table{Name: table}
	rows, err := q.Query(ctx, `SELECT a.attname, lower(format_type(a.atttypid, a.atttypmod)), NOT a.attnotnull,
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
	// One row per index column (key columns only, not INCLUDE ones): a
	// column name may contain any character, a comma included, so the
	// parts are not concatenated.
	rows, err = q.Query(ctx, `SELECT i.relname, ix.indisprimary, `+nnd+`, a.attname
FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
WHERE ix.indrelid = $1 AND ix.indisunique AND ix.indimmediate AND ix.indisvalid
  AND ix.indpred IS NULL AND ix.indexprs IS NULL AND NOT (0 = ANY(ix.indkey::int2[]))
  AND k.ord <= ix.indnkeyatts
ORDER BY ix.indisprimary DESC, i.relname, k.ord`, oid.Int64)
	if err != nil {
		return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
	}
	var ix *dialect.UniqueIndex
	for rows.Next() {
		var name, col string
		var primary, nullsNotDistinct bool
		if err := rows.Scan(&name, &primary, &nullsNotDistinct, &col); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
		}
		if ix == nil || ix.Name != name {
			t.Unique = append(t.Unique, dialect.UniqueIndex{Name: name, Primary: primary, NullsNotDistinct: nullsNotDistinct})
			ix = &t.Unique[len(t.Unique)-1]
		}
		ix.Columns = append(ix.Columns, col)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("pgdialect: read unique indexes of %s: %w", table, err)
	}
	return t, nil
}
