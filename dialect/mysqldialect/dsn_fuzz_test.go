package mysqldialect_test

import (
	"strings"
	"testing"

	"github.com/racefree/racefree/dialect/mysqldialect"
)

// FuzzParseDSN: no DSN, in either form, makes ParseDSN panic, and every
// failure says it comes from the DSN.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"mysql://root@127.0.0.1:3306/test", "mariadb://u:p@h/db?parseTime=false", "root@tcp(127.0.0.1:3306)/test",
		"u@unix(/tmp/x.sock)/db", "mysql://", "mysql://u@/db", "mysql://u:p@h:99999/db", "@tcp(", "mysql://%zz",
		"mysql://u@h/db?interpolateParams=false", "u:p@tcp(h)/db?x=%zz", "mysql://[::1]:3306/db", "/", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		cfg, err := mysqldialect.ParseDSN(dsn)
		if err != nil {
			if !strings.Contains(err.Error(), "DSN") {
				t.Fatalf("ParseDSN(%q): error %q does not mention the DSN", dsn, err)
			}
			return
		}
		if cfg == nil {
			t.Fatalf("ParseDSN(%q) returned neither a config nor an error", dsn)
		}
	})
}
