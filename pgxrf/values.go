package pgxrf

import (
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/racefree/racefree/internal/pgxvalue"
)

// anyScanner scans a row into dest, giving every *any in dest the value
// database/sql would (pgxvalue.SQLValue) and handing the other
// destinations to pgx. It is a pgx.RowScanner so that it sees the raw
// values of a QueryRow.
type anyScanner struct{ dest []any }

var _ pgx.RowScanner = anyScanner{}

func (s anyScanner) ScanRow(rows pgx.Rows) error {
	fds := rows.FieldDescriptions()
	if len(fds) != len(s.dest) {
		return fmt.Errorf("pgxrf: scan: %d columns into %d destinations", len(fds), len(s.dest))
	}
	raw := rows.RawValues()
	m := typeMap(rows)
	var typed []any // the destinations pgx scans, nil where SQLValue did
	for i, d := range s.dest {
		p, ok := d.(*any)
		if !ok {
			if typed == nil {
				typed = make([]any, len(s.dest))
			}
			typed[i] = d
			continue
		}
		v, err := pgxvalue.SQLValue(m, &fds[i], raw[i])
		if err != nil {
			return pgx.ScanArgError{ColumnIndex: i, FieldName: fds[i].Name, Err: err}
		}
		*p = v
	}
	if typed != nil {
		return rows.Scan(typed...)
	}
	return nil
}

// defaultMap serves rows without a connection (never seen from pgx's own
// rows; a safeguard).
var defaultMap = pgtype.NewMap()

func typeMap(rows pgx.Rows) *pgtype.Map {
	if c := rows.Conn(); c != nil {
		return c.TypeMap()
	}
	return defaultMap
}

// hasAny reports whether dest holds a *any.
func hasAny(dest []any) bool {
	for _, d := range dest {
		if _, ok := d.(*any); ok {
			return true
		}
	}
	return false
}
