package dialect_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect"
)

func TestValidateIdent(t *testing.T) {
	for _, ok := range []string{"a", "_a", "users", "app.users", "a$1", strings.Repeat("x", 64)} {
		if _, err := dialect.ValidateIdent(ok, 64); err != nil {
			t.Errorf("ValidateIdent(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1a", "a-b", "a b", `a"`, "a`", "a.b.c", ".a", "a.", "a;", "é", strings.Repeat("x", 65)} {
		_, err := dialect.ValidateIdent(bad, 64)
		if err == nil {
			t.Errorf("ValidateIdent(%q): no error", bad)
			continue
		}
		if bad != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ValidateIdent(%q) error %q does not name the identifier", bad, err)
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
	}
	for c := dialect.ClassOther; c <= dialect.ClassCanceled; c++ {
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
