package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables the tests read.
const (
	postgresEnv = "RACEFREE_POSTGRES_DSN"
	mysqlEnv    = "RACEFREE_MYSQL_DSN"
	// thinkEnv overrides racefree serve's --think (e.g. 0 to see how often
	// the race shows without the pause).
	thinkEnv = "RACEFREE_E2E_THINK"
	// clicksEnv overrides the number of clicks on the get-or-create button.
	clicksEnv = "RACEFREE_E2E_CLICKS"
)

func inCI() bool { return os.Getenv("CI") == "true" }

// engine is one database the page is tried on.
type engine struct {
	name, env, dsn string // env and dsn empty for SQLite
}

func engines() []engine {
	return []engine{
		{name: "sqlite"},
		{name: "postgres", env: postgresEnv, dsn: envOr(postgresEnv, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")},
		{name: "mysql", env: mysqlEnv, dsn: envOr(mysqlEnv, "mysql://root@127.0.0.1:3306/test")},
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// unavailable skips t, or fails it under CI=true, where nothing may pass by
// testing nothing.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format+" (CI=true: failing instead of skipping)", args...)
	}
	t.Skipf(format, args...)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// racefreeBinary builds the racefree command of the repository this module
// sits in, once per test run.
func racefreeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "racefree-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "racefree")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/racefree")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/racefree: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// server is a running `racefree serve`.
type server struct {
	cmd    *exec.Cmd
	url    string
	pids   []int
	stderr *lockedBuffer
	exited chan struct{}
	err    error // the exit status, set before exited is closed
}

type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func uniqueName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// startServe starts racefree serve on a free port with its own tables,
// and waits for the URL and the worker pids it prints. A database that
// cannot be reached skips the test (fails it under CI=true).
func startServe(t *testing.T, e engine, procs int) *server {
	t.Helper()
	dsn := e.dsn
	if e.name == "sqlite" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "serve.db")
	} else if dsn == "off" {
		unavailable(t, "%s=off: skipping %s", e.env, e.name)
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--procs", strconv.Itoa(procs), "--dsn", dsn,
		"--prefix", uniqueName("rfe2e"), "--drop"}
	if v := os.Getenv(thinkEnv); v != "" {
		args = append(args, "--think", v)
	}
	cmd := exec.Command(racefreeBinary(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t) })
	timeout := time.After(90 * time.Second)
	for s.url == "" || s.pids == nil {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.exited
				msg := strings.TrimSpace(s.stderr.String())
				if e.env != "" && strings.Contains(msg, "open ") {
					unavailable(t, "%s unreachable (set %s to its DSN): %s", e.name, e.env, msg)
				}
				t.Fatalf("racefree serve exited before it served (%v): %s", s.err, msg)
			}
			t.Logf("serve: %s", line)
			if u, ok := strings.CutPrefix(line, "racefree serve: http"); ok {
				s.url = "http" + u
			}
			if _, list, ok := strings.Cut(line, "pids "); ok {
				s.pids = []int{}
				for _, f := range strings.Split(list, ", ") {
					n, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil {
						t.Fatalf("pid list %q: %v", list, err)
					}
					s.pids = append(s.pids, n)
				}
			}
		case <-timeout:
			t.Fatalf("racefree serve printed no URL and pids within 90s; stderr: %s", s.stderr.String())
		}
	}
	if len(s.pids) != procs {
		t.Fatalf("racefree serve reported %d worker pids, want %d: %v", len(s.pids), procs, s.pids)
	}
	go func() {
		for range lines {
		}
	}()
	return s
}

// stop interrupts the server as Ctrl-C does and checks that it exits
// cleanly and leaves no worker process behind.
func (s *server) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("racefree serve still running 30s after an interrupt: killed")
	}
	if s.err != nil {
		t.Errorf("racefree serve exited with %v after an interrupt; stderr: %s", s.err, s.stderr.String())
	}
	for _, pid := range s.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker process %d still exists after racefree serve exited (kill 0: %v)", pid, err)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// getJSON fetches a JSON answer of the server.
func (s *server) getJSON(t *testing.T, path string, dst any) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get(strings.TrimSuffix(s.url, "/") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}
