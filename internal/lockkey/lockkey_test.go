package lockkey

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestKey64_Stable(t *testing.T) {
	// Pinned values: changing the derivation would silently stop excluding
	// processes running an older release against the same database.
	for _, tc := range []struct {
		name string
		want int64
	}{
		{name: "a", want: 6944118379883011518},
		{name: "orders:42", want: 3995571794443692266},
	} {
		if got := Key64(tc.name); got != tc.want {
			t.Errorf("Key64(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
	if Key64("a") == Key64("b") || Key64("") == Key64("a") {
		t.Error("distinct names share a key")
	}
}

func TestMySQLName(t *testing.T) {
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name   string
		in     string
		hashed bool
	}{
		{name: "Short", in: "orders:42"},
		{name: "Exactly64", in: strings.Repeat("x", 64)},
		{name: "Multibyte64", in: strings.Repeat("é", 64)},
		{name: "Long", in: long, hashed: true},
		{name: "InvalidUTF8", in: "a\xffb", hashed: true},
		{name: "LooksHashed", in: "racefree#abc", hashed: true},
		{name: "Empty", in: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MySQLName(tc.in)
			if n := utf8.RuneCountInString(got); n > MaxMySQLName {
				t.Fatalf("MySQLName(%q) has %d characters", tc.in, n)
			}
			if hashed := got != tc.in; hashed != tc.hashed {
				t.Fatalf("MySQLName(%q) = %q, hashed=%v, want %v", tc.in, got, hashed, tc.hashed)
			}
			if tc.hashed && !strings.HasPrefix(got, hashedPrefix) {
				t.Fatalf("hashed name %q lacks prefix", got)
			}
		})
	}
	if MySQLName(long) == MySQLName(long+"y") {
		t.Error("two long names share a hash")
	}
}

func TestLabel(t *testing.T) {
	if got := Label("héllo", 2); got != "h" {
		t.Errorf("Label cut inside a character: %q", got)
	}
	if got := Label("a\xff", 10); !utf8.ValidString(got) {
		t.Errorf("Label returned invalid UTF-8 %q", got)
	}
}
