package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// WorkerEnv is set to "1" in the environment of every worker process the
// lab starts. A test binary that re-executes itself as the worker checks it
// in TestMain.
const WorkerEnv = "RACEFREE_LAB_WORKER"

// StopGrace is how long a worker process has to finish its calls in flight
// and report after it was told to stop; then it is killed.
const StopGrace = 15 * time.Second

// Spawn runs n worker processes of the program exe, process i with
// args(i), all at once, and collects the Part each prints on stdout as one
// JSON line. When ctx ends, each process is sent an interrupt, so that it
// stops starting calls and reports what it measured; one that has not
// exited StopGrace later is killed. The parts of the processes that
// reported are returned even when others failed.
//
// A worker process whose parent dies sees its stdin close and stops too.
func Spawn(ctx context.Context, n int, exe string, args func(i int) []string) ([]Part, error) {
	parts := make([]Part, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { parts[i], errs[i] = runWorker(ctx, i, exe, args(i)) })
	}
	wg.Wait()
	return parts, errors.Join(errs...)
}

func runWorker(ctx context.Context, i int, exe string, args []string) (Part, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Part{}, fmt.Errorf("worker process %d: %w", i, err)
	}
	if err := cmd.Start(); err != nil {
		return Part{}, fmt.Errorf("start worker process %d: %w", i, err)
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(StopGrace):
			cmd.Process.Kill()
		}
	}()
	err = cmd.Wait()
	close(exited)
	stdin.Close()
	var p Part
	if jerr := json.Unmarshal(lastLine(stdout.Bytes()), &p); jerr != nil {
		msg := strings.TrimSpace(lastLine2(stderr.String()))
		if msg == "" && err != nil {
			msg = err.Error()
		}
		if msg == "" {
			msg = "no report: " + jerr.Error()
		}
		return Part{}, fmt.Errorf("worker process %d: %s", i, msg)
	}
	return p, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

func lastLine2(s string) string { return string(lastLine([]byte(s))) }

// Report writes p as the one JSON line Spawn reads from a worker process.
func Report(w io.Writer, p Part) error {
	return json.NewEncoder(w).Encode(p)
}

// WatchStdin cancels when r reaches its end or fails: a worker process
// calls it on its stdin, which the parent holds open, so that it stops when
// the parent dies.
func WatchStdin(r io.Reader, cancel context.CancelFunc) {
	go func() {
		io.Copy(io.Discard, r)
		cancel()
	}()
}
