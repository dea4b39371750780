package racefree_test

import (
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// engineWords are what only a dialect may know: engine names, engine SQL
// functions, settings and syntax. They must not appear in a string of the
// root package's code (comments may name engines: they document what each
// dialect does).
var engineWords = []string{
	"postgres", "mysql", "mariadb", "sqlite", "tidb", "cockroach", "galera",
	"pg_", "set_config", "lock_timeout", "current_setting", "xmax",
	"get_lock", "release_lock", "is_used_lock", "innodb", "@@", "lock in share mode", "lock tables", "exclusive mode",
	"pragma", "busy_timeout", "julianday", "information_schema", "sqlite_master",
	"engine=", "charset", "clock_timestamp", "utc_timestamp",
}

// looksLikeErrorCode reports a string that looks like an engine's error
// code: a MySQL error number or SQLite result code (3 to 5 digits), a
// PostgreSQL SQLSTATE (5 capital letters and digits, 2 or more digits).
func looksLikeErrorCode(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case '0' <= r && r <= '9':
			digits++
		case r < 'A' || r > 'Z':
			return false
		}
	}
	return digits == len(s) && len(s) >= 3 && len(s) <= 5 || len(s) == 5 && digits >= 2
}

// seamAllowed are the strings of the root package allowed to name an
// engine for a reason other than its behaviour, as "file:string" or, in
// any file, "string". None today: DSN schemes are read by package dialect
// (dialect.SchemeOf), and messages name the server through
// Dialect.Server.
var seamAllowed = map[string]bool{}

// TestRoot_NamesNoEngine keeps engine behaviour in the dialect packages:
// the root package's code holds no engine name, engine SQL, error number,
// or comparison of the dialect's name. (What an engine does differently
// is a dialect.Features bit or an optional interface of package dialect.)
func TestRoot_NamesNoEngine(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		var s scanner.Scanner
		s.Init(fset.AddFile(file, -1, len(src)), src, nil, 0)
		var prev [3]string // the last tokens, for "Name ( ) =="
		for {
			pos, tok, lit := s.Scan()
			if tok == token.EOF {
				break
			}
			text := lit
			if text == "" {
				text = tok.String()
			}
			if (tok == token.EQL || tok == token.NEQ) && prev == [3]string{"Name", "(", ")"} {
				t.Errorf("%s: compares the dialect's name: ask for a feature or an optional interface", fset.Position(pos))
			}
			prev = [3]string{prev[1], prev[2], text}
			if tok != token.STRING {
				continue
			}
			str, err := strconv.Unquote(lit)
			if err != nil {
				continue
			}
			if seamAllowed[file+":"+str] || seamAllowed[str] {
				continue
			}
			lower := strings.ToLower(str)
			for _, w := range engineWords {
				if strings.Contains(lower, w) {
					t.Errorf("%s: %q names %q: engine knowledge belongs in a dialect package", fset.Position(pos), str, w)
				}
			}
			if looksLikeErrorCode(str) {
				t.Errorf("%s: %q looks like an engine's error code: classify errors in the dialect", fset.Position(pos), str)
			}
		}
	}
}
