package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/racefree/racefree/dialect"
)

func TestDialect_Classify(t *testing.T) {
	mysql8 := New()
	mysql8.flavor = MySQL
	for _, tc := range []struct {
		name       string
		err        error
		want       dialect.Class
		constraint string
		column     string
		d          *Dialect // New() (MariaDB) when nil
	}{
		{name: "duplicate MariaDB", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'users_email'"}, want: dialect.ClassUniqueViolation, constraint: "users_email"},
		{name: "duplicate MySQL 8", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'users.users_email'"}, want: dialect.ClassUniqueViolation, constraint: "users_email", d: mysql8},
		{name: "duplicate MariaDB index with a dot", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'by.email'"}, want: dialect.ClassUniqueViolation, constraint: "by.email"},
		{name: "null", err: &mysql.MySQLError{Number: 1048, Message: "Column 'req' cannot be null"}, want: dialect.ClassNotNullViolation, column: "req"},
		{name: "no default", err: &mysql.MySQLError{Number: 1364, Message: "Field 'req' doesn't have a default value"}, want: dialect.ClassNotNullViolation, column: "req"},
		{name: "foreign key", err: &mysql.MySQLError{Number: 1452, Message: "Cannot add or update a child row: a foreign key constraint fails (`test`.`c`, CONSTRAINT `c_p_fk` FOREIGN KEY (`p`) REFERENCES `p` (`id`))"}, want: dialect.ClassForeignKeyViolation, constraint: "c_p_fk"},
		{name: "check MySQL", err: &mysql.MySQLError{Number: 3819, Message: "Check constraint 'n_pos' is violated."}, want: dialect.ClassCheckViolation, constraint: "n_pos", d: mysql8},
		{name: "check MariaDB", err: &mysql.MySQLError{Number: 4025, Message: "CONSTRAINT `n_pos` failed for `test`.`c`"}, want: dialect.ClassCheckViolation, constraint: "n_pos"},
		{name: "duplicate value with quote", err: &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'for key 'x'' for key 'PRIMARY'"}, want: dialect.ClassUniqueViolation, constraint: "PRIMARY"},
		{name: "wrapped duplicate", err: fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1062, Message: "odd"}), want: dialect.ClassUniqueViolation},
		{name: "deadlock", err: &mysql.MySQLError{Number: 1213}, want: dialect.ClassDeadlock},
		{name: "lock wait timeout", err: &mysql.MySQLError{Number: 1205}, want: dialect.ClassLockNotAcquired},
		{name: "nowait", err: &mysql.MySQLError{Number: 3572}, want: dialect.ClassLockNotAcquired},
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
		// The driver's unexported errBadConnNoWrite, as a failed handshake
		// returns it through database/sql.
		{name: "bad conn, no write", err: fmt.Errorf("begin transaction: take connection: %w", errors.New("bad connection")), want: dialect.ClassNotSent},
		{name: "bad connection in a longer message", err: errors.New("a bad connection pool"), want: dialect.ClassOther},
		{name: "too many connections", err: &mysql.MySQLError{Number: 1040}, want: dialect.ClassUnavailable},
		{name: "too many user connections", err: &mysql.MySQLError{Number: 1203}, want: dialect.ClassUnavailable},
		{name: "user limit", err: &mysql.MySQLError{Number: 1226}, want: dialect.ClassUnavailable},
		{name: "refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, want: dialect.ClassUnavailable},
		{name: "dial timeout", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}, want: dialect.ClassUnavailable},
		{name: "reset", err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, want: dialect.ClassConnection},
		{name: "no such host", err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "db.invalid", IsNotFound: true}}, want: dialect.ClassOther},
		{name: "name server down", err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "db", IsTemporary: true}}, want: dialect.ClassUnavailable},
		{name: "context", err: context.Canceled, want: dialect.ClassCanceled},
		{name: "syntax", err: &mysql.MySQLError{Number: 1064}, want: dialect.ClassOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			if d == nil {
				d = New()
			}
			got := d.Classify(tc.err)
			if got.Class != tc.want || got.Constraint != tc.constraint {
				t.Fatalf("Classify(%v) = %v %q, want %v %q", tc.err, got.Class, got.Constraint, tc.want, tc.constraint)
			}
			if tc.column != "" && (len(got.Columns) != 1 || got.Columns[0] != tc.column) {
				t.Fatalf("Columns = %q, want [%q]", got.Columns, tc.column)
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
