// Package pgxvalue reads columns as pgx receives them into the values
// database/sql gives for them over pgx's own database/sql driver
// (pgx/v5/stdlib). pgxrf scans with it so that a row reads the same
// whichever client library the program uses, and the PostgreSQL dialect
// reads hits natively on database/sql's connections with it (see
// dialect.RowReader).
package pgxvalue

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The values racefree scans into *any (a racefree.Values row, a struct
// field of type any) are the ones database/sql gives over pgx's own
// database/sql driver (pgx/v5/stdlib), so that a row reads the same
// whichever client library the program uses. Scanned natively, pgx would
// give int32 for an integer column, pgtype.Numeric, [16]byte for a uuid
// and a decoded map for json.

// ResultFormats asks the server for the types pgx's database/sql driver
// reads in binary (integers, floats, bool, bytea, dates, timestamps, oids)
// in binary and for every other type in text, as that driver does: the
// text is what database/sql hands out for them. Scanning into a typed
// destination works from either format.
var ResultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        pgtype.BinaryFormatCode,
	pgtype.ByteaOID:       pgtype.BinaryFormatCode,
	pgtype.CIDOID:         pgtype.BinaryFormatCode,
	pgtype.DateOID:        pgtype.BinaryFormatCode,
	pgtype.Float4OID:      pgtype.BinaryFormatCode,
	pgtype.Float8OID:      pgtype.BinaryFormatCode,
	pgtype.Int2OID:        pgtype.BinaryFormatCode,
	pgtype.Int4OID:        pgtype.BinaryFormatCode,
	pgtype.Int8OID:        pgtype.BinaryFormatCode,
	pgtype.OIDOID:         pgtype.BinaryFormatCode,
	pgtype.TimestampOID:   pgtype.BinaryFormatCode,
	pgtype.TimestamptzOID: pgtype.BinaryFormatCode,
	pgtype.XIDOID:         pgtype.BinaryFormatCode,
}

// WithFormats prepends ResultFormats to a query's arguments.
func WithFormats(args []any) []any {
	all := make([]any, 0, len(args)+1)
	return append(append(all, ResultFormats), args...)
}

// StringFromText reports whether SQLValue gives a column of type oid that
// came in text format as its text, a string: every type it does not
// decode (text, varchar, uuid, numeric, …), as database/sql over pgx does.
func StringFromText(oid uint32) bool {
	switch oid {
	case pgtype.BoolOID, pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID,
		pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID,
		pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID,
		pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return false
	}
	return true
}

// SQLValue converts one column as pgx received it into the value
// database/sql would give for it; nil for NULL.
func SQLValue(m *pgtype.Map, fd *pgconn.FieldDescription, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	oid, format := fd.DataTypeOID, fd.Format
	if format == pgtype.BinaryFormatCode {
		// The common fixed-size types, decoded without a scan plan: they
		// are most of a hit's columns.
		switch {
		case oid == pgtype.Int8OID && len(src) == 8:
			return int64(binary.BigEndian.Uint64(src)), nil
		case oid == pgtype.Int4OID && len(src) == 4:
			return int64(int32(binary.BigEndian.Uint32(src))), nil
		case oid == pgtype.Int2OID && len(src) == 2:
			return int64(int16(binary.BigEndian.Uint16(src))), nil
		case oid == pgtype.BoolOID && len(src) == 1:
			return src[0] == 1, nil
		case oid == pgtype.Float8OID && len(src) == 8:
			return math.Float64frombits(binary.BigEndian.Uint64(src)), nil
		}
	}
	switch oid {
	case pgtype.BoolOID:
		var d bool
		err := m.Scan(oid, format, src, &d)
		return d, err
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		// Fresh bytes: src is pgx's read buffer, reused by the next row.
		var d []byte
		err := m.Scan(oid, format, src, &d)
		return d, err
	case pgtype.Int2OID:
		var d int16
		err := m.Scan(oid, format, src, &d)
		return int64(d), err
	case pgtype.Int4OID:
		var d int32
		err := m.Scan(oid, format, src, &d)
		return int64(d), err
	case pgtype.Int8OID:
		var d int64
		err := m.Scan(oid, format, src, &d)
		return d, err
	case pgtype.Float4OID:
		var d float32
		err := m.Scan(oid, format, src, &d)
		return float64(d), err
	case pgtype.Float8OID:
		var d float64
		err := m.Scan(oid, format, src, &d)
		return d, err
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		var d pgtype.Uint32
		if err := m.Scan(oid, format, src, &d); err != nil {
			return nil, err
		}
		return d.Value()
	case pgtype.DateOID:
		var d pgtype.Date
		if err := m.Scan(oid, format, src, &d); err != nil {
			return nil, err
		}
		return d.Value()
	case pgtype.TimestampOID:
		var d pgtype.Timestamp
		if err := m.Scan(oid, format, src, &d); err != nil {
			return nil, err
		}
		return d.Value()
	case pgtype.TimestamptzOID:
		var d pgtype.Timestamptz
		if err := m.Scan(oid, format, src, &d); err != nil {
			return nil, err
		}
		return d.Value()
	}
	if format == pgtype.TextFormatCode {
		return string(src), nil
	}
	// Binary despite resultFormats: the connection runs in a mode that
	// ignores them (QueryExecModeExec). Text from pgx's own encoder.
	var s string
	if err := m.Scan(oid, format, src, &s); err == nil {
		return s, nil
	}
	if t, ok := m.TypeForOID(oid); ok {
		v, err := t.Codec.DecodeValue(m, oid, format, src)
		if err == nil {
			var buf []byte
			if buf, err = m.Encode(oid, pgtype.TextFormatCode, v, nil); err == nil {
				return string(buf), nil
			}
		}
		return nil, fmt.Errorf("column %q of type %s: %w", fd.Name, t.Name, err)
	}
	return nil, fmt.Errorf("column %q: type oid %d came in binary format and pgx has no codec for it", fd.Name, oid)
}
