package fuzzcheck_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/racefree/racefree/internal/fuzzcheck"
)

func TestUnquote(t *testing.T) {
	for _, tc := range []struct {
		in   string
		q    byte
		want []string
	}{
		{`"a"`, '"', []string{"a"}},
		{`"a"."b"`, '"', []string{"a", "b"}},
		{`"a""b"`, '"', []string{`a"b`}},
		{"`a``b`.`c`", '`', []string{"a`b", "c"}},
		{`"a.b"`, '"', []string{"a.b"}},
	} {
		got, err := fuzzcheck.Unquote(tc.in, tc.q)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Unquote(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `a`, `"a`, `"a"b`, `"a".`, `"a" "b"`, `"a";drop`} {
		if got, err := fuzzcheck.Unquote(bad, '"'); err == nil {
			t.Errorf("Unquote(%s) = %q, want an error", bad, got)
		}
	}
}

// The property catches each way a Quote could go wrong.
func TestCheckQuote(t *testing.T) {
	ok := []struct{ name, quoted string }{{"a", `"a"`}, {"a.b", `"a"."b"`}, {"a.b", `"a.b"`}, {`a"b`, `"a""b"`}}
	for _, tc := range ok {
		if err := fuzzcheck.CheckQuote(tc.name, tc.quoted, nil, '"'); err != nil {
			t.Errorf("CheckQuote(%q, %s): %v", tc.name, tc.quoted, err)
		}
	}
	bad := []struct{ name, quoted string }{{"a", `"b"`}, {`a"b`, `"a"b"`}, {"a;x", `"a";x`}, {"a", `a`}, {"a.", `"a".""`}}
	for _, tc := range bad {
		if err := fuzzcheck.CheckQuote(tc.name, tc.quoted, nil, '"'); err == nil {
			t.Errorf("CheckQuote(%q, %s) passed", tc.name, tc.quoted)
		}
	}
	if err := fuzzcheck.CheckQuote("a b", "", errors.New("racefree: invalid identifier \"a b\""), '"'); err != nil {
		t.Errorf("a clear error failed the property: %v", err)
	}
	if err := fuzzcheck.CheckQuote("a b", "", errors.New("bad"), '"'); err == nil {
		t.Error("an unclear error passed the property")
	}
}

func TestReadCorpus(t *testing.T) {
	dir := t.TempDir()
	cdir := filepath.Join(dir, "testdata", "fuzz", "FuzzX")
	os.MkdirAll(cdir, 0o755)
	os.WriteFile(filepath.Join(cdir, "one"), []byte("go test fuzz v1\nstring(\"a\\x00b\")\n"), 0o644)
	got, err := fuzzcheck.ReadCorpus(dir, "FuzzX")
	if err != nil || !slices.Equal(got, []string{"a\x00b"}) {
		t.Errorf("ReadCorpus = %q, %v", got, err)
	}
	os.WriteFile(filepath.Join(cdir, "two"), []byte("go test fuzz v1\nint(3)\n"), 0o644)
	if _, err := fuzzcheck.ReadCorpus(dir, "FuzzX"); err == nil {
		t.Error("ReadCorpus accepted a non-string entry")
	}
}
