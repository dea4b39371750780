//go:build unix

package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// The environment of a worker process that the tests start: the test
// binary re-executed, which then serves instead of testing.
const (
	testWorkerEnv = "RACEFREE_SERVE_TEST_WORKER"
	testDSNEnv    = "RACEFREE_SERVE_TEST_DSN"
	testPrefixEnv = "RACEFREE_SERVE_TEST_PREFIX"
	testThinkEnv  = "RACEFREE_SERVE_TEST_THINK"
)

func TestMain(m *testing.M) {
	if os.Getenv(testWorkerEnv) == "1" {
		os.Exit(testWorker())
	}
	os.Exit(m.Run())
}

// testWorker is a worker process as racefree serve-worker runs it.
func testWorker() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	err := func() error {
		ln, err := InheritedListener()
		if err != nil {
			return err
		}
		defer ln.Close()
		db, err := racefree.Open(ctx, os.Getenv(testDSNEnv))
		if err != nil {
			return err
		}
		defer db.Close()
		think, _ := time.ParseDuration(os.Getenv(testThinkEnv))
		app, err := New(ctx, db, Config{Procs: 1, Think: think, Prefix: os.Getenv(testPrefixEnv)})
		if err != nil {
			return err
		}
		return Serve(ctx, ln, app.Handler(), os.Stdout)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test worker:", err)
		return 1
	}
	return 0
}

// syncBuffer collects the workers' stderr.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mustPrefork starts n worker processes serving the application over dsn
// on a fresh port, and returns them with the base URL.
func mustPrefork(t *testing.T, n int, dsn, prefix string, think time.Duration) (*Workers, string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stderr := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := Prefork{
		Exe:    os.Args[0],
		Args:   []string{"-test.run=^$"},
		Env:    []string{testWorkerEnv + "=1", testDSNEnv + "=" + dsn, testPrefixEnv + "=" + prefix, testThinkEnv + "=" + think.String()},
		Stderr: stderr,
		N:      n,
	}.Start(ctx, ln.(*net.TCPListener))
	if err != nil {
		t.Fatalf("Start: %v\nworkers' stderr:\n%s", err, stderr.String())
	}
	t.Cleanup(func() { ws.Stop() })
	return ws, "http://" + ln.Addr().String(), stderr
}

// mustBeGone fails t for every pid that still names a process.
func mustBeGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker process %d still exists (kill 0: %v)", pid, err)
		}
	}
}

// Separate OS processes accepting on one port, against the real engine:
// naive get-or-create leaves rows created by different processes for one
// name (asserted: the race between processes really happened); racefree
// leaves one row whichever process answers; racefree transfers from all
// the processes add up; Stop leaves no process behind.
func TestPrefork_Processes(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 3*time.Minute)
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		prefix := mustSetup(t, db)
		const procs, n = 4, 16
		ws, url, stderr := mustPrefork(t, procs, dsn, prefix, 30*time.Millisecond)
		pids := ws.PIDs()
		isWorker := map[int]bool{}
		for _, p := range pids {
			isWorker[p] = true
		}

		serving := map[int]bool{}
		crossProcess := 0
		bursts := 0
		for ; bursts < 6 && (crossProcess == 0 || len(serving) < 2); bursts++ {
			name := "burst " + strconv.Itoa(bursts)
			got := make([]gocAnswer, n)
			concurrently(n, func(i int) { postJSON(t, url+"/api/goc/naive", gocRequest{Name: name}, &got[i]) })
			creators := map[int64]bool{}
			for _, a := range got {
				serving[a.PID] = true
				if !isWorker[a.PID] {
					t.Errorf("answer from pid %d, not a worker (%v)", a.PID, pids)
				}
				if a.Created {
					creators[a.CreatedPID] = true
				}
			}
			if len(creators) > 1 {
				crossProcess++
			}
		}
		t.Logf("naive: rows for one name created by more than one process in %d of %d bursts of %d; answers from %d of %d processes",
			crossProcess, bursts, n, len(serving), procs)
		if len(serving) < 2 {
			t.Errorf("every answer came from one process of %d: the workers do not share the port", procs)
		}
		if crossProcess == 0 {
			t.Errorf("naive get-or-create never left rows created by two processes in %d bursts: the race between processes did not show", bursts)
		}

		got := make([]gocAnswer, n)
		concurrently(n, func(i int) { postJSON(t, url+"/api/goc/racefree", gocRequest{Name: "one"}, &got[i]) })
		ids, created, servers := map[int64]bool{}, 0, map[int]bool{}
		for _, a := range got {
			ids[a.ID] = true
			servers[a.PID] = true
			if a.Created {
				created++
			}
		}
		var rows rowsAnswer
		call(t, "GET", url+"/api/goc/rows?name=one", "", "", &rows)
		if len(ids) != 1 || created != 1 || rows.Racefree.Rows != 1 {
			t.Errorf("racefree from %d processes: %d ids, %d created, %d rows; want 1, 1, 1", len(servers), len(ids), created, rows.Racefree.Rows)
		}

		tr := make([]transferAnswer, n)
		concurrently(n, func(i int) {
			req := transferRequest{From: int64(1 + i%2), To: int64(2 - i%2), Amount: int64(5 + i)}
			postJSON(t, url+"/api/transfer/racefree", req, &tr[i])
		})
		want := [2]int64{InitialBalance, InitialBalance}
		for _, a := range tr {
			if a.Done {
				want[a.From-1] -= a.Amount
				want[a.To-1] += a.Amount
			}
		}
		var st stateAnswer
		call(t, "GET", url+"/api/transfer/state", "", "", &st)
		if st.Racefree.Balances != want {
			t.Errorf("racefree transfers from %d processes: balances %v, want %v", procs, st.Racefree.Balances, want)
		}

		if err := ws.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		mustBeGone(t, pids)
		if s := stderr.String(); s != "" {
			t.Errorf("workers wrote to stderr:\n%s", s)
		}
	})
}

// A worker that cannot start makes Start fail with its reason, leaving no
// process behind.
func TestPrefork_WorkerFailsToStart(t *testing.T) {
	testdb.Watchdog(t, time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stderr := &syncBuffer{}
	_, err = Prefork{
		Exe:    os.Args[0],
		Args:   []string{"-test.run=^$"},
		Env:    []string{testWorkerEnv + "=1", testDSNEnv + "=oracle://nobody@nowhere/x", testPrefixEnv + "=x"},
		Stderr: stderr,
		N:      3,
	}.Start(context.Background(), ln.(*net.TCPListener))
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("Start = %v, want a worker that exited before it was ready", err)
	}
	if !strings.Contains(stderr.String(), `unknown DSN scheme "oracle"`) {
		t.Errorf("the worker's reason is not on stderr: %q", stderr.String())
	}
}

// A worker that dies is reported on Exited, and Stop still stops the
// others.
func TestPrefork_WorkerDies(t *testing.T) {
	testdb.Watchdog(t, time.Minute)
	dsn := "sqlite:" + t.TempDir() + "/dies.db"
	db := testdb.Open(t, dsn)
	prefix := mustSetup(t, db)
	ws, _, _ := mustPrefork(t, 2, dsn, prefix, 0)
	pids := ws.PIDs()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ws.Exited():
		if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", pids[0])) {
			t.Errorf("Exited: %v, want pid %d named", err, pids[0])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a killed worker was not reported within 20s")
	}
	if err := ws.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	mustBeGone(t, pids)
}
