package pgxrf_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports_OnlyPgx: pgxrf brings pgx and nothing of the other engines,
// and the core never brings pgxrf, so that a program that does not import
// it does not compile it.
func TestImports_OnlyPgx(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, dep := range deps(".") {
		for _, other := range []string{"github.com/go-sql-driver/mysql", "modernc.org/sqlite"} {
			if strings.HasPrefix(dep, other) {
				t.Errorf("pgxrf depends on %s", dep)
			}
		}
	}
	for _, pkg := range []string{"..", "../dialect/pgdialect"} {
		for _, dep := range deps(pkg) {
			if dep == "github.com/racefree/racefree/pgxrf" {
				t.Errorf("%s depends on pgxrf", pkg)
			}
		}
	}
}
