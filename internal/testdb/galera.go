package testdb

import (
	"os"
	"strings"
	"testing"
)

// GaleraEnv names the comma-separated DSNs of the nodes of a MariaDB Galera
// cluster; `bash .ci/galera start` starts a three-node cluster on loopback
// and prints the value.
const GaleraEnv = "RACEFREE_GALERA_DSNS"

// GaleraDSNs returns the DSNs of the Galera nodes. It skips tb when the
// variable is unset, or fails it under CI=true, where .ci/run starts the
// cluster. It skips tb, even under CI=true, when RACEFREE_ENGINES leaves
// "galera" out.
func GaleraDSNs(tb testing.TB) []string {
	tb.Helper()
	RequireSelected(tb, "galera")
	v := os.Getenv(GaleraEnv)
	if v == "" || v == "off" {
		if InCI() {
			tb.Fatalf("%s is not set, but CI=true requires the Galera cluster (.ci/galera start)", GaleraEnv)
		}
		tb.Skipf("no Galera cluster: run `bash .ci/galera start` and set %s to the DSNs it prints", GaleraEnv)
	}
	dsns := strings.Split(v, ",")
	if len(dsns) < 2 {
		tb.Fatalf("%s lists %d node(s); Galera tests need at least 2", GaleraEnv, len(dsns))
	}
	for _, dsn := range dsns {
		Engine{Name: "galera", env: GaleraEnv, dsn: dsn}.Require(tb)
	}
	return dsns
}
