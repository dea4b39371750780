package pgdialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
		{name: "unique", err: &pgconn.PgError{Code: "23505", ConstraintName: "users_email_key"}, want: dialect.ClassUniqueViolation, constraint: "users_email_key"},
		{name: "wrapped unique", err: fmt.Errorf("insert user: %w", &pgconn.PgError{Code: "23505", ConstraintName: "k"}), want: dialect.ClassUniqueViolation, constraint: "k"},
		{name: "serialization", err: &pgconn.PgError{Code: "40001"}, want: dialect.ClassSerialization},
		{name: "deadlock", err: &pgconn.PgError{Code: "40P01"}, want: dialect.ClassDeadlock},
		{name: "lock not available", err: &pgconn.PgError{Code: "55P03"}, want: dialect.ClassLockNotAcquired},
		{name: "statement timeout", err: &pgconn.PgError{Code: "57014"}, want: dialect.ClassCanceled},
		{name: "admin shutdown", err: &pgconn.PgError{Code: "57P01"}, want: dialect.ClassConnection},
		{name: "connection exception", err: &pgconn.PgError{Code: "08006"}, want: dialect.ClassConnection},
		{name: "completion unknown (CockroachDB's ambiguous result)", err: &pgconn.PgError{Code: "40003"}, want: dialect.ClassConnection},
		{name: "check violation", err: &pgconn.PgError{Code: "23514", ConstraintName: "n_pos"}, want: dialect.ClassCheckViolation, constraint: "n_pos"},
		{name: "not null", err: &pgconn.PgError{Code: "23502", ColumnName: "req"}, want: dialect.ClassNotNullViolation},
		{name: "foreign key", err: &pgconn.PgError{Code: "23503", ConstraintName: "p_fk"}, want: dialect.ClassForeignKeyViolation, constraint: "p_fk"},
		{name: "exclusion", err: &pgconn.PgError{Code: "23P01", ConstraintName: "no_overlap"}, want: dialect.ClassIntegrityViolation, constraint: "no_overlap"},
		{name: "too many connections", err: &pgconn.PgError{Code: "53300"}, want: dialect.ClassUnavailable},
		{name: "starting up", err: &pgconn.PgError{Code: "57P03"}, want: dialect.ClassUnavailable},
		{name: "crash shutdown", err: &pgconn.PgError{Code: "57P02"}, want: dialect.ClassConnection},
		{name: "refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, want: dialect.ClassUnavailable},
		{name: "reset", err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, want: dialect.ClassConnection},
		{name: "no such host", err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "db.invalid", IsNotFound: true}}, want: dialect.ClassOther},
		{name: "name server down", err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "db", IsTemporary: true}}, want: dialect.ClassUnavailable},
		{name: "bad conn", err: driver.ErrBadConn, want: dialect.ClassNotSent},
		{name: "context", err: fmt.Errorf("query: %w", context.DeadlineExceeded), want: dialect.ClassCanceled},
		{name: "eof", err: io.ErrUnexpectedEOF, want: dialect.ClassConnection},
		{name: "plain", err: errors.New("x"), want: dialect.ClassOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.Classify(tc.err)
			if got.Class != tc.want || got.Constraint != tc.constraint {
				t.Fatalf("Classify(%v) = %v %q, want %v %q", tc.err, got.Class, got.Constraint, tc.want, tc.constraint)
			}
			if !errors.Is(got, tc.err) {
				t.Fatal("the classified error does not wrap the original")
			}
		})
	}
	if d.Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}

// What pgx returns for a connection that could not be opened, and for one
// that broke with a statement in flight, classified as the retry rules
// need: a refused connection is ClassUnavailable (nothing sent), and a
// "conn closed" is ClassConnection (it may have run), although pgconn
// calls it safe to retry.
func TestDialect_ClassifyPgxConnectionErrors(t *testing.T) {
	d := New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pgconn.Connect(ctx, "postgres://u@"+addr+"/db?sslmode=disable&connect_timeout=5")
	if got := d.Classify(err); got == nil || got.Class != dialect.ClassUnavailable {
		t.Errorf("refused connection %v: class %v, want %v", err, got.Class, dialect.ClassUnavailable)
	}
	closed := fmt.Errorf("commit: %w", pgconn.ErrConnClosed)
	if got := d.Classify(closed); got.Class != dialect.ClassConnection || !pgconn.SafeToRetry(&connClosed{}) {
		t.Errorf("conn closed: class %v, want %v", got.Class, dialect.ClassConnection)
	}
	if got := d.Classify(&connClosed{}); got.Class != dialect.ClassConnection {
		t.Errorf("pgconn's conn closed lock error: class %v, want %v", got.Class, dialect.ClassConnection)
	}
}

// connClosed has the shape of pgconn's unexported connLockError for a
// closed connection: SafeToRetry, and wraps pgconn.ErrConnClosed.
type connClosed struct{}

func (*connClosed) Error() string     { return "conn closed" }
func (*connClosed) SafeToRetry() bool { return true }
func (*connClosed) Unwrap() error     { return pgconn.ErrConnClosed }
