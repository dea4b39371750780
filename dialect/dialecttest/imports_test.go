package dialecttest

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the suite usable from outside racefree's module: of
// racefree it may import only the dialect contract (packages dialect and
// session), never the root package or an internal one.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"github.com/racefree/racefree/dialect": true, "github.com/racefree/racefree/session": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/racefree/racefree") && !allowed[path] {
				t.Errorf("%s imports %s: the contract suite may import only packages dialect and session of racefree", f, path)
			}
		}
	}
}
