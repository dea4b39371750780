package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/testdb"
)

// startPgBouncer runs a PgBouncer in pool mode mode in front of the
// PostgreSQL server of dsn, and returns a DSN that reaches the server
// through it. Without the pgbouncer binary the test is skipped, or fails
// under CI (.ci/run installs it).
func startPgBouncer(t *testing.T, dsn, mode string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if testdb.InCI() {
			t.Fatal("pgbouncer is not installed (.ci/run installs it)")
		}
		t.Skip("pgbouncer is not installed: apt install pgbouncer")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	pgUser := u.User.Username()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().(*net.TCPAddr).Port
	l.Close()

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ini := filepath.Join(dir, "pgbouncer.ini")
	conf := fmt.Sprintf(`[databases]
%s = host=%s port=%s dbname=%s user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
default_pool_size = 4
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
`, db, host, port, db, pgUser, listen, filepath.Join(dir, "users.txt"), mode)
	for name, body := range map[string]string{"pgbouncer.ini": conf, "users.txt": fmt.Sprintf("%q \"\"\n", pgUser)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{ini}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		runAs := "nobody"
		if _, err := user.Lookup("postgres"); err == nil {
			runAs = "postgres"
		}
		args = []string{"-u", runAs, ini}
	}
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", listen)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	through := *u
	through.Host = addr
	q := through.Query()
	// PgBouncer 1.18 keeps no named prepared statements across
	// transactions: pgx must not rely on them behind it.
	q.Set("default_query_exec_mode", "simple_protocol")
	through.RawQuery = q.Encode()
	return through.String()
}

// racefree doctor tells a transaction-pooling proxy, which silently breaks
// session locks, from a session-pooling one and from none, with a real
// PgBouncer.
func TestDoctor_Pooler(t *testing.T) {
	pg, ok := testdb.Get("postgres")
	if !ok {
		t.Skip("no postgres engine")
	}
	dsn := pg.DSN(t)
	db := testdb.Open(t, dsn)
	table := testdb.CreateTable(t, db, "doc_pooler", "id {{id}}, email {{text}} NOT NULL, UNIQUE (email)")
	for _, tc := range []struct {
		name, mode string
		want       string
	}{
		{"Direct", "", "sessions are pinned"},
		{"SessionPooling", "session", "sessions are pinned"},
		{"TransactionPooling", "transaction", "WARNING: a transaction-pooling proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer testdb.Watchdog(t, 60*time.Second)()
			target := dsn
			if tc.mode != "" {
				target = startPgBouncer(t, dsn, tc.mode)
			}
			code, stdout, stderr := run(t, context.Background(), "doctor", "--dsn", target, "--table", table, "--lookup", "email")
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var line string
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(l, "pooler:") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Fatalf("pooler line %q, want it to say %q; output:\n%s", line, tc.want, stdout)
			}
		})
	}
}
