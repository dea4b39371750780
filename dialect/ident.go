package dialect

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIdentLen is MySQL's limit on an identifier: 64 characters.
const MaxIdentLen = 64

// ErrInvalidIdent matches every error for a table, column or lock name that
// an engine cannot take: empty, not valid UTF-8, containing NUL, too long,
// or breaking an engine rule (MySQL: a trailing space, a character outside
// the Basic Multilingual Plane). Any other name is quoted, never refused.
var ErrInvalidIdent = errors.New("racefree: invalid identifier")

// IdentRules are an engine's rules for a quoted identifier. Quoting turns
// any text the engine allows into one identifier: the quote character is
// doubled inside it, so no name can end the quoted identifier early and
// change the shape of a statement.
type IdentRules struct {
	// Quote is the quote character: '"' (standard SQL) or '`' (MySQL).
	Quote byte
	// MaxBytes is the longest name in bytes, 0 for no limit. PostgreSQL
	// silently truncates names longer than 63 bytes, which would make
	// two names one, so they are refused instead.
	MaxBytes int
	// MaxRunes is the longest name in characters, 0 for no limit (MySQL:
	// 64).
	MaxRunes int
	// BMPOnly refuses characters outside the Basic Multilingual Plane,
	// which MySQL identifiers cannot hold.
	BMPOnly bool
	// NoTrailingSpace refuses a name ending in a space, which MySQL does
	// not allow for tables and columns.
	NoTrailingSpace bool
}

// Check reports why name cannot be one identifier under r, or nil.
func (r IdentRules) Check(name string) error {
	if err := r.check(name); err != nil {
		return fmt.Errorf("%w %q: %s", ErrInvalidIdent, name, err)
	}
	return nil
}

func (r IdentRules) check(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("contains a NUL character")
	case r.MaxBytes > 0 && len(name) > r.MaxBytes:
		return fmt.Errorf("longer than %d bytes", r.MaxBytes)
	case r.MaxRunes > 0 && utf8.RuneCountInString(name) > r.MaxRunes:
		return fmt.Errorf("longer than %d characters", r.MaxRunes)
	case r.NoTrailingSpace && strings.HasSuffix(name, " "):
		return errors.New("ends with a space")
	}
	if r.BMPOnly {
		for _, c := range name {
			if c > 0xFFFF {
				return fmt.Errorf("character %q is outside the Basic Multilingual Plane", c)
			}
		}
	}
	return nil
}

// QuoteIdent checks name as one identifier (a dot is part of the name) and
// returns it quoted.
func (r IdentRules) QuoteIdent(name string) (string, error) {
	if err := r.Check(name); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(name) + 2)
	r.write(&b, name)
	return b.String(), nil
}

// QuoteQualified quotes a table name, "name" or "schema.name": the name
// is split at its first dot, and each part quoted as one identifier. A
// table whose own name contains a dot cannot be named this way.
func (r IdentRules) QuoteQualified(name string) (string, error) {
	parts, err := r.SplitQualified(name)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(name) + 4)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		r.write(&b, p)
	}
	return b.String(), nil
}

// SplitQualified splits "schema.name" at its first dot and checks each
// part; a name without a dot is one part.
func (r IdentRules) SplitQualified(name string) ([]string, error) {
	parts := []string{name}
	if schema, rest, ok := strings.Cut(name, "."); ok {
		parts = []string{schema, rest}
	}
	for _, p := range parts {
		if err := r.check(p); err != nil {
			if len(parts) > 1 {
				return nil, fmt.Errorf("%w %q (schema.name): part %q: %s", ErrInvalidIdent, name, p, err)
			}
			return nil, fmt.Errorf("%w %q: %s", ErrInvalidIdent, name, err)
		}
	}
	return parts, nil
}

func (r IdentRules) write(b *strings.Builder, name string) {
	b.WriteByte(r.Quote)
	for i := 0; i < len(name); i++ {
		if name[i] == r.Quote {
			b.WriteByte(r.Quote)
		}
		b.WriteByte(name[i])
	}
	b.WriteByte(r.Quote)
}
