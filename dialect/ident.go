package dialect

import (
	"fmt"
	"strings"
)

// MaxIdentLen is the longest identifier racefree accepts: MySQL's limit of 64
// characters. PostgreSQL truncates at 63, so its dialect checks 63.
const MaxIdentLen = 64

// ValidateIdent checks that name is a plain identifier, or two joined by one
// dot ("schema.table"): each part starts with a letter or underscore and goes
// on with letters, digits, underscores or dollar signs, and is at most maxLen
// bytes long. racefree never quotes its way around odd names: a name that
// needs quoting to be valid is refused, so that no caller-supplied text can
// change the shape of a statement. It returns the parts.
func ValidateIdent(name string, maxLen int) ([]string, error) {
	if name == "" {
		return nil, fmt.Errorf("racefree: invalid identifier: empty name")
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("racefree: invalid identifier %q: at most one dot (schema.name) is allowed", name)
	}
	for _, p := range parts {
		if err := validatePart(p, maxLen); err != nil {
			return nil, fmt.Errorf("racefree: invalid identifier %q: %w", name, err)
		}
	}
	return parts, nil
}

func validatePart(p string, maxLen int) error {
	if p == "" {
		return fmt.Errorf("empty part")
	}
	if len(p) > maxLen {
		return fmt.Errorf("longer than %d bytes", maxLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '$'):
		default:
			return fmt.Errorf("character %q at position %d is not allowed", c, i)
		}
	}
	return nil
}

// QuoteWith validates name and quotes each part with q ('"' or '`').
// Validation guarantees the parts contain no quote characters.
func QuoteWith(name string, maxLen int, q byte) (string, error) {
	parts, err := ValidateIdent(name, maxLen)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte(q)
		b.WriteString(p)
		b.WriteByte(q)
	}
	return b.String(), nil
}
