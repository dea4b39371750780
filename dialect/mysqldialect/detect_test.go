package mysqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"testing"

	"github.com/racefree/racefree/dialect"
	"github.com/racefree/racefree/session"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		version      string
		flavor       Flavor
		major, minor int
	}{
		{version: "10.11.19-MariaDB-0+deb12u1", flavor: MariaDB, major: 10, minor: 11},
		{version: "11.4.2-MariaDB-log", flavor: MariaDB, major: 11, minor: 4},
		{version: "8.0.36", flavor: MySQL, major: 8, minor: 0},
		{version: "8.4.0-commercial", flavor: MySQL, major: 8, minor: 4},
		{version: "5.7.44-log", flavor: MySQL, major: 5, minor: 7},
		{version: "8.0.11-TiDB-v8.4.0-this-is-a-placeholder", flavor: TiDB, major: 8, minor: 4},
		{version: "5.7.25-TiDB-v6.1.7", flavor: TiDB, major: 6, minor: 1},
		{version: "8.0.11-TiDB-v7.5.1-serverless", flavor: TiDB, major: 7, minor: 5},
	} {
		t.Run(tc.version, func(t *testing.T) {
			flavor, num := parseVersion(tc.version)
			major, minor := parseMajorMinor(num)
			if flavor != tc.flavor || major != tc.major || minor != tc.minor {
				t.Fatalf("parseVersion(%q) = %v %d.%d, want %v %d.%d", tc.version, flavor, major, minor, tc.flavor, tc.major, tc.minor)
			}
		})
	}
}

func TestDialect_Detect(t *testing.T) {
	const (
		returning  = dialect.Returning
		forShare   = dialect.ForShare
		skipLocked = dialect.SkipLocked
		noWait     = dialect.NoWait
		tableLocks = dialect.TableLocks
		savepoints = dialect.Savepoints
		advisory   = dialect.AdvisoryLocks
		nodeLocal  = dialect.NodeLocalNamedLocks
		retries    = dialect.ClientRetries
		updateRet  = dialect.UpdateReturning
	)
	for _, tc := range []struct {
		name     string
		answers  map[string][]string // query → one row
		server   string
		has, not []dialect.Feature
	}{
		{
			name:    "MariaDB 10.11",
			answers: map[string][]string{"SELECT VERSION()": {"10.11.19-MariaDB-0+deb12u1"}, "SHOW VARIABLES LIKE 'wsrep_on'": {"wsrep_on", "OFF"}},
			server:  "MariaDB 10.11.19",
			has:     []dialect.Feature{returning, forShare, skipLocked, noWait, tableLocks, savepoints, advisory},
			not:     []dialect.Feature{updateRet, nodeLocal, retries},
		},
		{
			name:    "MariaDB Galera",
			answers: map[string][]string{"SELECT VERSION()": {"10.11.19-MariaDB-0+deb12u1"}, "SHOW VARIABLES LIKE 'wsrep_on'": {"wsrep_on", "ON"}},
			server:  "MariaDB 10.11.19 (Galera)",
			has:     []dialect.Feature{nodeLocal},
			not:     []dialect.Feature{advisory},
		},
		{
			name:    "MariaDB 10.4",
			answers: map[string][]string{"SELECT VERSION()": {"10.4.34-MariaDB"}},
			server:  "MariaDB 10.4.34",
			has:     []dialect.Feature{noWait, advisory},
			not:     []dialect.Feature{returning, skipLocked},
		},
		{
			name:    "MySQL 8",
			answers: map[string][]string{"SELECT VERSION()": {"8.0.36"}},
			server:  "MySQL 8.0.36",
			has:     []dialect.Feature{forShare, skipLocked, noWait, tableLocks, savepoints, advisory},
			not:     []dialect.Feature{returning, updateRet, retries},
		},
		{
			name:    "MySQL 5.7",
			answers: map[string][]string{"SELECT VERSION()": {"5.7.44-log"}},
			server:  "MySQL 5.7.44",
			has:     []dialect.Feature{forShare, advisory},
			not:     []dialect.Feature{returning, skipLocked, noWait},
		},
		{
			name:    "TiDB pessimistic",
			answers: map[string][]string{"SELECT VERSION()": {"8.0.11-TiDB-v8.4.0-this-is-a-placeholder"}, "SELECT @@tidb_txn_mode": {"pessimistic"}},
			server:  "TiDB 8.4.0",
			has:     []dialect.Feature{noWait, savepoints, advisory},
			not:     []dialect.Feature{returning, updateRet, forShare, skipLocked, tableLocks, retries, nodeLocal},
		},
		{
			name:    "TiDB optimistic",
			answers: map[string][]string{"SELECT VERSION()": {"8.0.11-TiDB-v7.5.1"}, "SELECT @@tidb_txn_mode": {"optimistic"}},
			server:  "TiDB 7.5.1 (optimistic)",
			has:     []dialect.Feature{retries, advisory},
			not:     []dialect.Feature{returning, forShare, tableLocks},
		},
		{
			name:    "TiDB before savepoints, empty txn mode",
			answers: map[string][]string{"SELECT VERSION()": {"5.7.25-TiDB-v6.1.7"}, "SELECT @@tidb_txn_mode": {""}},
			server:  "TiDB 6.1.7 (optimistic)",
			has:     []dialect.Feature{retries},
			not:     []dialect.Feature{savepoints},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := sql.OpenDB(cannedConnector{tc.answers})
			defer db.Close()
			d := New()
			if err := d.Detect(context.Background(), session.SQLPool{DB: db}); err != nil {
				t.Fatal(err)
			}
			if d.Server() != tc.server {
				t.Errorf("Server() = %q, want %q", d.Server(), tc.server)
			}
			for _, f := range tc.has {
				if !d.Features().Has(f) {
					t.Errorf("%s: feature %b missing from %b", d.Server(), f, d.Features())
				}
			}
			for _, f := range tc.not {
				if d.Features().Has(f) {
					t.Errorf("%s: feature %b set in %b", d.Server(), f, d.Features())
				}
			}
		})
	}
}

func TestDialect_DetectFailsClearly(t *testing.T) {
	db := sql.OpenDB(cannedConnector{map[string][]string{"SELECT VERSION()": {"8.0.11-TiDB-v8.4.0"}}})
	defer db.Close()
	err := New().Detect(context.Background(), session.SQLPool{DB: db})
	if err == nil || err.Error() != "mysqldialect: detect tidb_txn_mode: sql: no rows in result set" {
		t.Fatalf("Detect without tidb_txn_mode = %v", err)
	}
}

// cannedConnector is a database/sql driver that answers each query it
// knows with one row of strings and every other query with no rows.
type cannedConnector struct{ answers map[string][]string }

func (c cannedConnector) Connect(context.Context) (driver.Conn, error) { return cannedConn(c), nil }
func (c cannedConnector) Driver() driver.Driver                        { return nil }

type cannedConn cannedConnector

func (c cannedConn) Prepare(string) (driver.Stmt, error) {
	return nil, fmt.Errorf("canned: no Prepare")
}
func (c cannedConn) Close() error              { return nil }
func (c cannedConn) Begin() (driver.Tx, error) { return nil, fmt.Errorf("canned: no Begin") }

func (c cannedConn) QueryContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	row, ok := c.answers[query]
	return &cannedRows{row: row, done: !ok}, nil
}

type cannedRows struct {
	row  []string
	done bool
}

func (r *cannedRows) Columns() []string {
	cols := make([]string, len(r.row))
	for i := range cols {
		cols[i] = fmt.Sprint("c", i)
	}
	if len(cols) == 0 {
		cols = []string{"c0"}
	}
	return cols
}

func (r *cannedRows) Close() error { return nil }

func (r *cannedRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	for i, v := range r.row {
		dest[i] = v
	}
	return nil
}
