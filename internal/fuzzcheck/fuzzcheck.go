// Package fuzzcheck holds the properties racefree's fuzz tests check and
// the helpers they share: reading a fuzz target's committed seed corpus
// (testdata/fuzz/FuzzX) so that non-fuzz tests can run every entry against
// a real engine, and taking a quoted identifier apart again.
package fuzzcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// IdentSeeds are names worth trying as identifiers: plain, reserved,
// schema-qualified, at and past each engine's length limit, and every way
// of escaping a quote or a statement.
var IdentSeeds = []string{
	"users", "_t1$x", "app.users", "MixedCase", "select", "order", "a-b", "a b", `a"b`, "a`b", `a""b`,
	"a\\b", "1abc", "a.b.c", "a;DROP TABLE x", "x'); DROP TABLE y; --", "a.", ".a", "..", "", " ", "a ", " a",
	"ä", "Ünïcödé", "日本語", "emoji😀", "a\x00", "\x00", "\xff", "a\nb", "a\tb", "$a", "a$",
	strings.Repeat("x", 63), strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("é", 32),
}

// Unquote takes apart an identifier quoted with q ('"' or '`'): parts
// wrapped in q, a doubled q standing for one, joined by dots. It fails on
// anything else, such as text outside the quotes.
func Unquote(quoted string, q byte) ([]string, error) {
	var parts []string
	i := 0
	for {
		if i >= len(quoted) || quoted[i] != q {
			return nil, fmt.Errorf("part %d does not start with %c at byte %d of %q", len(parts)+1, q, i, quoted)
		}
		i++
		var b strings.Builder
		for {
			if i >= len(quoted) {
				return nil, fmt.Errorf("unterminated quote in %q", quoted)
			}
			if quoted[i] == q {
				if i+1 < len(quoted) && quoted[i+1] == q {
					b.WriteByte(q)
					i += 2
					continue
				}
				i++
				break
			}
			b.WriteByte(quoted[i])
			i++
		}
		parts = append(parts, b.String())
		if i == len(quoted) {
			return parts, nil
		}
		if quoted[i] != '.' {
			return nil, fmt.Errorf("byte %q after part %d of %q is not a dot", quoted[i], len(parts), quoted)
		}
		i++
	}
}

// CheckQuote is the property of Dialect.Quote for one name: either a clear
// error — non-empty, in racefree's form, naming the problem — or a quoted
// identifier that takes apart into parts that, joined by dots, give the
// name back exactly: no character lost, added or changed, nothing outside
// the quotes. It holds for a Quote that refuses every unusual name and for
// one that quotes any name the engine allows.
func CheckQuote(name, quoted string, err error, q byte) error {
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "racefree: ") || len(msg) < len("racefree: ")+10 {
			return fmt.Errorf("Quote(%q) error %q is not a clear racefree error", name, msg)
		}
		if quoted != "" {
			return fmt.Errorf("Quote(%q) returned %q with its error", name, quoted)
		}
		return nil
	}
	parts, uerr := Unquote(quoted, q)
	if uerr != nil {
		return fmt.Errorf("Quote(%q) = %s, which is not a quoted identifier: %w", name, quoted, uerr)
	}
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("Quote(%q) = %s: part %d is empty", name, quoted, i+1)
		}
	}
	if got := strings.Join(parts, "."); got != name {
		return fmt.Errorf("Quote(%q) = %s, which names %q", name, quoted, got)
	}
	return nil
}

// ReadCorpus returns the string arguments of every entry of a fuzz
// target's committed corpus, testdata/fuzz/<target> under dir, for fuzz
// targets whose only argument is a string.
func ReadCorpus(dir, target string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "testdata", "fuzz", target, "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, path := range files {
		s, err := readEntry(path)
		if err != nil {
			return nil, fmt.Errorf("corpus entry %s: %w", path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func readEntry(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" {
		return "", errors.New("not a go test fuzz v1 file")
	}
	if !sc.Scan() {
		return "", errors.New("no value")
	}
	line := strings.TrimSpace(sc.Text())
	if !strings.HasPrefix(line, "string(") || !strings.HasSuffix(line, ")") {
		return "", fmt.Errorf("value %q is not string(…)", line)
	}
	return strconv.Unquote(line[len("string(") : len(line)-1])
}

// Names returns IdentSeeds followed by the committed corpus of target in
// dir, without repeats.
func Names(tb testing.TB, dir, target string) []string {
	tb.Helper()
	corpus, err := ReadCorpus(dir, target)
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, IdentSeeds...), corpus...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// CatalogRoundTrip is the half of Quote's property that needs the real
// engine: for every name Quote accepts (dotted names aside: their first
// part would be a schema), a table with a column of that name can be
// created, and the engine's catalog lists the column under exactly that
// name. columns returns a query listing a table's column names in order.
func CatalogRoundTrip(t *testing.T, db *racefree.DB, names []string, columns func(table string) string) {
	ctx := context.Background()
	d := db.Dialect()
	checked := 0
	for _, name := range names {
		quoted, err := d.Quote(name)
		if err != nil || strings.Contains(name, ".") {
			continue
		}
		checked++
		table := testdb.UniqueName("rf_ident")
		if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE "+table+" (rf_id INTEGER, "+quoted+" INTEGER)"); err != nil {
			t.Errorf("Quote(%q) = %s, which %s refuses: %v", name, quoted, d.Name(), err)
			continue
		}
		rows, err := db.SQL().QueryContext(ctx, columns(table))
		var got []string
		for err == nil && rows.Next() {
			var c string
			if err = rows.Scan(&c); err == nil {
				got = append(got, c)
			}
		}
		if rows != nil {
			rows.Close()
		}
		if _, derr := db.SQL().ExecContext(ctx, "DROP TABLE "+table); derr != nil {
			t.Errorf("drop %s: %v", table, derr)
		}
		if err != nil {
			t.Errorf("read the columns of %s: %v", table, err)
			continue
		}
		if len(got) != 2 || got[1] != name {
			t.Errorf("Quote(%q) = %s, and the catalog lists the columns %q", name, quoted, got)
		}
	}
	if checked == 0 {
		t.Error("Quote accepted no name: nothing was checked")
	}
	t.Logf("%d names accepted by Quote created and found in the catalog", checked)
}
