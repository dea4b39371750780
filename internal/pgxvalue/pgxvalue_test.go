package pgxvalue

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// StringFromText agrees with SQLValue: every type it names comes out of a
// text-format column as the column's text.
func TestStringFromText_AgreesWithSQLValue(t *testing.T) {
	m := pgtype.NewMap()
	strings, decoded := 0, 0
	for oid := uint32(1); oid < 5000; oid++ {
		if _, known := m.TypeForOID(oid); !known {
			continue
		}
		fd := pgconn.FieldDescription{Name: "c", DataTypeOID: oid, Format: pgtype.TextFormatCode}
		if !StringFromText(oid) {
			decoded++
			continue
		}
		strings++
		v, err := SQLValue(m, &fd, []byte("some text"))
		if s, ok := v.(string); err != nil || !ok || s != "some text" {
			t.Errorf("oid %d: SQLValue gave %T %#v, %v; want the text as a string", oid, v, v, err)
		}
	}
	if strings == 0 || decoded < 16 {
		t.Errorf("%d types as strings, %d decoded: the list is wrong", strings, decoded)
	}
}
