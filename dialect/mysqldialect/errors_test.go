package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/racefree/racefree/dialect"
)

func TestDialect_Classify(t *testing.T) {
	d := New()
	for _, tc := range []struct {
		name       string
		err        error
		want       dialect.Class
		constraint string
	}{
		{name: "duplicate MariaDB", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'users_email'"}, want: dialect.ClassUniqueViolation, constraint: "users_email"},
		{name: "duplicate MySQL 8", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'users.users_email'"}, want: dialect.ClassUniqueViolation, constraint: "users_email"},
		{name: "duplicate value with quote", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'for key 'x'' for key 'PRIMARY'"}, want: dialect.ClassUniqueViolation, constraint: "PRIMARY"},
		{name: "wrapped duplicate", err: fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1062, Message: "odd"}), want: dialect.ClassUniqueViolation},
		{name: "deadlock", err: &mysql.MySQLError{Number: 1213}, want: dialect.ClassDeadlock},
		{name: "lock wait timeout", err: &mysql.MySQLError{Number: 1205}, want: dialect.ClassLockTimeout},
		{name: "nowait", err: &mysql.MySQLError{Number: 3572}, want: dialect.ClassLockTimeout},
		{name: "record changed", err: &mysql.MySQLError{Number: 1020}, want: dialect.ClassSerialization},
		{name: "tidb write conflict", err: &mysql.MySQLError{Number: 9007}, want: dialect.ClassSerialization},
		{name: "tidb for update cannot retry", err: &mysql.MySQLError{Number: 8002}, want: dialect.ClassSerialization},
		{name: "tidb stale start ts", err: &mysql.MySQLError{Number: 8005, Message: "Write conflict, txnStartTS 1 is stale"}, want: dialect.ClassSerialization},
		{name: "tidb safe to retry", err: &mysql.MySQLError{Number: 8022}, want: dialect.ClassSerialization},
		{name: "tidb schema changed", err: &mysql.MySQLError{Number: 8028}, want: dialect.ClassSerialization},
		// Seen on TiDB 8.4 when 64 goroutines lock the same rows.
		{name: "tidb lock retry limit", err: &mysql.MySQLError{Number: 1105, SQLState: [5]byte{'H', 'Y', '0', '0', '0'}, Message: "pessimistic lock retry limit reached"}, want: dialect.ClassSerialization},
		{name: "other unknown error", err: &mysql.MySQLError{Number: 1105, Message: "something else"}, want: dialect.ClassOther},
		// TiDB refuses SERIALIZABLE: a plain error, not a retryable one.
		{name: "tidb unsupported isolation", err: &mysql.MySQLError{Number: 8048, Message: "The isolation level 'SERIALIZABLE' is not supported."}, want: dialect.ClassOther},
		{name: "interrupted", err: &mysql.MySQLError{Number: 1317}, want: dialect.ClassCanceled},
		{name: "killed", err: &mysql.MySQLError{Number: 1927}, want: dialect.ClassConnection},
		{name: "invalid conn", err: mysql.ErrInvalidConn, want: dialect.ClassConnection},
		{name: "bad conn", err: driver.ErrBadConn, want: dialect.ClassNotSent},
		{name: "context", err: context.Canceled, want: dialect.ClassCanceled},
		{name: "syntax", err: &mysql.MySQLError{Number: 1064}, want: dialect.ClassOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.Classify(tc.err)
			if got.Class != tc.want || got.Constraint != tc.constraint {
				t.Fatalf("Classify(%v) = %v %q, want %v %q", tc.err, got.Class, got.Constraint, tc.want, tc.constraint)
			}
		})
	}
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, addr, user, pass, db string
		interpolate               bool
	}{
		{dsn: "mysql://root@127.0.0.1:3306/test", addr: "127.0.0.1:3306", user: "root", db: "test", interpolate: true},
		{dsn: "mariadb://u:p%40ss@db/app", addr: "db:3306", user: "u", pass: "p@ss", db: "app", interpolate: true},
		{dsn: "root@tcp(127.0.0.1:3306)/test?interpolateParams=false", addr: "127.0.0.1:3306", user: "root", db: "test"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			cfg, err := ParseDSN(tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tc.addr || cfg.User != tc.user || cfg.Passwd != tc.pass || cfg.DBName != tc.db || cfg.InterpolateParams != tc.interpolate || !cfg.ParseTime {
				t.Fatalf("ParseDSN(%q) = %+v", tc.dsn, cfg)
			}
		})
	}
	for _, bad := range []string{"mysql://", "mysql://host:notaport/x", "nonsense"} {
		if _, err := ParseDSN(bad); err == nil {
			t.Errorf("ParseDSN(%q): no error", bad)
		}
	}
}
