package dialect_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/racefree/racefree/dialect"
)

func TestIdentRules(t *testing.T) {
	pg := dialect.IdentRules{Quote: '"', MaxBytes: 63}
	my := dialect.IdentRules{Quote: '`', MaxRunes: 64, BMPOnly: true, NoTrailingSpace: true}
	for _, tc := range []struct {
		name  string
		rules dialect.IdentRules
		in    string
		want  string // "" for an error
	}{
		{"plain", pg, "users", `"users"`},
		{"mixed case", pg, "UserName", `"UserName"`},
		{"reserved word", pg, "select", `"select"`},
		{"space", pg, "first name", `"first name"`},
		{"quote doubled", pg, `a"b`, `"a""b"`},
		{"only quotes", pg, `""`, `""""""`},
		{"backtick is plain in pg", pg, "a`b", "\"a`b\""},
		{"non-ASCII", pg, "größe", `"größe"`},
		{"dot is part of one identifier", pg, "a.b", `"a.b"`},
		{"injection stays one identifier", pg, `x"; DROP TABLE t; --`, `"x""; DROP TABLE t; --"`},
		{"63 bytes", pg, strings.Repeat("x", 63), `"` + strings.Repeat("x", 63) + `"`},
		{"64 bytes", pg, strings.Repeat("x", 64), ""},
		{"multibyte past 63 bytes", pg, strings.Repeat("ä", 32), ""},
		{"empty", pg, "", ""},
		{"NUL", pg, "a\x00b", ""},
		{"invalid UTF-8", pg, "a\xffb", ""},
		{"mysql backtick doubled", my, "a`b", "`a``b`"},
		{"mysql 64 characters", my, strings.Repeat("ä", 64), "`" + strings.Repeat("ä", 64) + "`"},
		{"mysql 65 characters", my, strings.Repeat("ä", 65), ""},
		{"mysql trailing space", my, "a ", ""},
		{"mysql leading space", my, " a", "` a`"},
		{"mysql outside the BMP", my, "a😀", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rules.QuoteIdent(tc.in)
			if tc.want == "" {
				if err == nil || !errors.Is(err, dialect.ErrInvalidIdent) {
					t.Fatalf("QuoteIdent(%q) = %q, %v; want an ErrInvalidIdent", tc.in, got, err)
				}
				if tc.in != "" && utf8.ValidString(tc.in) && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
					t.Errorf("error %q does not name the identifier", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("QuoteIdent(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIdentRules_QuoteQualified(t *testing.T) {
	pg := dialect.IdentRules{Quote: '"', MaxBytes: 63}
	for in, want := range map[string]string{
		"users":        `"users"`,
		"app.users":    `"app"."users"`,
		"my app.Users": `"my app"."Users"`,
		"a.b.c":        `"a"."b.c"`, // split at the first dot: a table named "b.c" in schema a
		`s.t"x`:        `"s"."t""x"`,
	} {
		if got, err := pg.QuoteQualified(in); err != nil || got != want {
			t.Errorf("QuoteQualified(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".a", "a.", "."} {
		if got, err := pg.QuoteQualified(bad); !errors.Is(err, dialect.ErrInvalidIdent) {
			t.Errorf("QuoteQualified(%q) = %q, %v; want ErrInvalidIdent", bad, got, err)
		}
	}
}

func TestError_Is(t *testing.T) {
	driverErr := errors.New("deadlock found")
	err := fmt.Errorf("transfer: %w", &dialect.Error{Class: dialect.ClassDeadlock, Err: driverErr})
	if !errors.Is(err, dialect.ErrDeadlock) || errors.Is(err, dialect.ErrSerialization) {
		t.Fatal("class sentinel matching is wrong")
	}
	if !errors.Is(err, driverErr) {
		t.Fatal("the driver's error is not reachable")
	}
	if got := (&dialect.Error{Class: dialect.ClassDeadlock, Err: driverErr}).Error(); got != "deadlock found" {
		t.Fatalf("message %q, want the driver's unchanged", got)
	}
}

func TestClass_Retryable(t *testing.T) {
	retryable := map[dialect.Class]bool{
		dialect.ClassSerialization: true, dialect.ClassDeadlock: true, dialect.ClassBusy: true, dialect.ClassNotSent: true,
		dialect.ClassUnavailable: true,
	}
	for c := dialect.ClassOther; c <= dialect.ClassUnavailable; c++ {
		if got := c.Retryable(); got != retryable[c] {
			t.Errorf("%v.Retryable() = %v", c, got)
		}
		if c.String() == "unknown class" {
			t.Errorf("class %d has no name", c)
		}
	}
}

func TestLookup_Unregistered(t *testing.T) {
	_, err := dialect.Lookup("postgres")
	if err == nil || !strings.Contains(err.Error(), "dialect/pgdialect") {
		t.Fatalf("Lookup of an unimported dialect = %v, want a hint to import pgdialect", err)
	}
	if _, err := dialect.Lookup("oracle"); err == nil || !strings.Contains(err.Error(), "unknown DSN scheme") {
		t.Fatalf("Lookup(oracle) = %v", err)
	}
}

func TestError_NilIsSafe(t *testing.T) {
	var ce *dialect.Error
	var err error = ce // what `err := db.Classify(nil)` stored in an error looks like
	if errors.Is(err, dialect.ErrDeadlock) || errors.Unwrap(err) != nil || err.Error() != "<nil>" {
		t.Fatal("a nil *Error must match nothing and not panic")
	}
}

func TestError_IsIntegrity(t *testing.T) {
	for c := dialect.ClassOther; c <= dialect.ClassIntegrityViolation; c++ {
		err := fmt.Errorf("insert: %w", &dialect.Error{Class: c, Err: errors.New("x")})
		want := c == dialect.ClassUniqueViolation || c == dialect.ClassNotNullViolation ||
			c == dialect.ClassForeignKeyViolation || c == dialect.ClassCheckViolation || c == dialect.ClassIntegrityViolation
		if got := errors.Is(err, dialect.ErrIntegrity); got != want {
			t.Errorf("%v: errors.Is(err, ErrIntegrity) = %v, want %v", c, got, want)
		}
	}
	nn := &dialect.Error{Class: dialect.ClassNotNullViolation}
	if !errors.Is(nn, dialect.ErrNotNullViolation) || errors.Is(nn, dialect.ErrUniqueViolation) {
		t.Fatal("a not-null violation must match ErrNotNullViolation only (and ErrIntegrity)")
	}
}
