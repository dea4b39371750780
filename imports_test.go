package racefree_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports_NoDriverInRoot keeps the promise that a program compiles only
// the drivers of the dialects it imports.
func TestImports_NoDriverInRoot(t *testing.T) {
	drivers := []string{"github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"}
	for pkg, allowed := range map[string]string{
		".":                       "",
		"./dialect":               "",
		"./dialect/pgdialect":     "github.com/jackc/pgx",
		"./dialect/mysqldialect":  "github.com/go-sql-driver/mysql",
		"./dialect/sqlitedialect": "modernc.org/sqlite",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, d := range drivers {
				if strings.HasPrefix(dep, d) && d != allowed {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
