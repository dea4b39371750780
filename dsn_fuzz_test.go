package racefree_test

import (
	"context"
	"strings"
	"testing"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/mysqldialect"
	_ "github.com/racefree/racefree/dialect/pgdialect"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
)

// FuzzOpen: no DSN makes Open panic, and every failure is a racefree
// error. The context is canceled before the call, so Open parses the DSN,
// picks the dialect and opens the pool, and then stops before it connects
// anywhere or creates any file.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgresql://u:p@h/db", "postgres://h1,h2:5433/db",
		"postgres://%zz", "postgres://", "mysql://root@127.0.0.1:3306/test", "mariadb://u:p@h/db?parseTime=false",
		"root@tcp(127.0.0.1:3306)/test", "u@unix(/tmp/x.sock)/db", "mysql://", "mysql://u@/db", "@tcp(",
		"sqlite:lab.db", "sqlite://lab.db?_pragma=busy_timeout(1)", "file:x.db?mode=ro", ":memory:", "sqlite:",
		"lab.db", "./a:b.db", "oracle://scott@db/x", "://", ":", "", "\x00", "sqlite:?_txlock=%zz", "postgres://[::1",
		"mysql://u:p@h:99999/db", "host=localhost user=x", "C:\\db\\lab.db",
	} {
		f.Add(s)
	}
	f.Chdir(f.TempDir()) // a bare path names a file here, should anything create it
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, dsn string) {
		db, err := racefree.Open(canceled, dsn)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%q) with a canceled context succeeded", dsn)
		}
		if !strings.HasPrefix(err.Error(), "racefree: ") {
			t.Fatalf("Open(%q): error %q is not a racefree error", dsn, err)
		}
	})
}
