//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
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

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

func TestServe_Flags(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	// A case that wrongly starts the server stops when ctx ends, and fails.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ZeroProcs", []string{"--procs", "0"}, "--procs must be between 1 and 64, got 0"},
		{"TooManyProcs", []string{"--procs", "65"}, "--procs must be between 1 and 64"},
		{"ZeroRequests", []string{"--requests", "0"}, "--requests must be between 1 and 100"},
		{"NegativeThink", []string{"--think", "-1s"}, "--think must be between 0 and 5s"},
		{"LongThink", []string{"--think", "1m"}, "--think must be between 0 and 5s"},
		{"BadPrefix", []string{"--prefix", "Drop Table"}, `--prefix "Drop Table"`},
		{"BadAddr", []string{"--addr", "8080"}, `--addr "8080": want HOST:PORT`},
		{"Stray", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, ctx, append([]string{"serve"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.wantErr) || stdout != "" {
				t.Errorf("code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, tc.wantErr)
			}
			mustOneLine(t, stderr)
		})
	}
	t.Run("Unreachable", func(t *testing.T) {
		code, _, stderr := run(t, ctx, "serve", "--addr", "127.0.0.1:0", "--dsn", "mysql://root:secret@127.0.0.1:1/test")
		if code != exitFailure || !strings.Contains(stderr, "root:xxxxx@") {
			t.Errorf("code %d, stderr %q", code, stderr)
		}
		mustOneLine(t, stderr)
	})
	t.Run("Help", func(t *testing.T) {
		code, stdout, _ := run(t, context.Background(), "serve", "-h")
		for _, want := range []string{"--procs", "--think", "prefork", defaultServeDB} {
			if !strings.Contains(stdout, want) {
				t.Errorf("help lacks %q:\n%s", want, stdout)
			}
		}
		if code != exitOK {
			t.Errorf("code %d", code)
		}
	})
}

// servedProcess is racefree serve run as a real process (this test binary
// re-executed as racefree), as a user runs it.
type servedProcess struct {
	cmd    *exec.Cmd
	url    string
	pids   []int
	stdout *bufio.Scanner
	stderr *strings.Builder
}

func startServeProcess(t *testing.T, dir string, args ...string) *servedProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	// A process group of its own, as a shell gives a foreground job, so
	// that the test can interrupt it as Ctrl-C does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), lab.WorkerEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{cmd: cmd, stdout: bufio.NewScanner(stdout), stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, pid := range p.pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for p.url == "" || p.pids == nil {
		if !p.stdout.Scan() {
			cmd.Wait()
			t.Fatalf("racefree serve ended before it served; stderr: %s", p.stderr.String())
		}
		line := p.stdout.Text()
		if u, ok := strings.CutPrefix(line, "racefree serve: "); ok {
			p.url = u
		}
		if _, list, ok := strings.Cut(line, "pids "); ok {
			for _, f := range strings.Split(list, ", ") {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pids line %q: %v", line, err)
				}
				p.pids = append(p.pids, pid)
			}
		}
	}
	return p
}

// waitGone waits up to d for every pid to stop naming a process.
func waitGone(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("worker process %d still running %v later: an orphan", pid, d)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Ctrl-C on racefree serve stops every worker process and exits 0, with
// the page served from several of them until then; the default database is
// a SQLite file in the current directory. A terminal's Ctrl-C interrupts
// the whole process group, workers included; kill -INT only the parent.
func TestServe_Interrupt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group bool
	}{{"CtrlC", true}, {"ParentOnly", false}} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Watchdog(t, 2*time.Minute)
			dir := t.TempDir()
			p := startServeProcess(t, dir, "--procs", "3", "--think", "0")
			if len(p.pids) != 3 {
				t.Fatalf("pids %v, want 3", p.pids)
			}
			if _, err := os.Stat(filepath.Join(dir, defaultServeDB)); err != nil {
				t.Errorf("no SQLite file in the current directory: %v", err)
			}
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			var mu sync.Mutex // guards seen
			seen := map[string]bool{}
			for range 3 { // bursts of concurrent requests, each on a connection of its own
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() {
						res, err := c.Get(p.url + "api/info")
						if err != nil {
							t.Error(err)
							return
						}
						b, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if _, rest, ok := strings.Cut(string(b), `"pid":`); ok {
							mu.Lock()
							seen[strings.SplitN(rest, ",", 2)[0]] = true
							mu.Unlock()
						}
					})
				}
				wg.Wait()
			}
			if len(seen) < 2 {
				t.Errorf("30 requests answered by %d process(es) of 3", len(seen))
			}
			pid := p.cmd.Process.Pid
			if tc.group {
				pid = -pid
			}
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			var rest strings.Builder
			for p.stdout.Scan() {
				rest.WriteString(p.stdout.Text() + "\n")
			}
			if err := p.cmd.Wait(); err != nil {
				t.Errorf("exit after the interrupt: %v (want 0); stderr: %s", err, p.stderr.String())
			}
			if !strings.Contains(rest.String(), "stopped; all 3 worker processes exited") {
				t.Errorf("stdout after the interrupt: %q", rest.String())
			}
			waitGone(t, p.pids, time.Second) // reaped by the parent before it exited
		})
	}
}

// A parent killed without a chance to stop its workers (SIGKILL) leaves no
// orphans: each worker sees its stdin close and stops.
func TestServe_ParentKilled(t *testing.T) {
	testdb.Watchdog(t, 2*time.Minute)
	p := startServeProcess(t, t.TempDir(), "--procs", "2")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := p.cmd.Wait(); !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	waitGone(t, p.pids, 20*time.Second)
}
