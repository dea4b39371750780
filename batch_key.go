package racefree

import (
	"fmt"
	"strconv"
	"time"
)

// appendKey appends a lookup's identity to b: typed, so that 1 and "1"
// differ, and text equal whether the driver gave string or []byte. The
// batch looks every returned row up by it, so it is built into a reused
// buffer: a map index with string(b) does not allocate.
func appendKey(b []byte, vals []any) []byte {
	if len(vals) == 1 {
		// The common case: one text value, "s" marks text.
		switch x := vals[0].(type) {
		case string:
			return append(append(b, 's'), x...)
		case []byte:
			return append(append(b, 's'), x...)
		}
	}
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 'N')
		case string:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case []byte:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case int64:
			b = append(b, 'i')
			b = strconv.AppendInt(b, x, 10)
		case float64:
			if x == float64(int64(x)) {
				b = append(b, 'i')
				b = strconv.AppendInt(b, int64(x), 10)
			} else {
				b = append(b, 'f')
				b = strconv.AppendFloat(b, x, 'g', -1, 64)
			}
		case bool:
			if x {
				b = append(b, "i1"...)
			} else {
				b = append(b, "i0"...)
			}
		case time.Time:
			b = append(b, 't')
			b = strconv.AppendInt(b, x.UnixNano(), 10)
		default:
			b = fmt.Appendf(b, "%T:%v", x, x)
		}
		b = append(b, ';')
	}
	return b
}

// encodeKey is appendKey into a new string.
func encodeKey(vals []any) string { return string(appendKey(nil, vals)) }
