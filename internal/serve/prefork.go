package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ListenerFD is the file descriptor on which a worker process finds the
// shared listening socket: the first of exec.Cmd.ExtraFiles, after stdin,
// stdout and stderr.
const ListenerFD = 3

// ReadyLine starts the line a worker process prints on its stdout once it
// accepts connections.
const ReadyLine = "ready"

// Defaults of Prefork.
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopGrace    = 10 * time.Second
)

// Prefork starts worker processes that all accept connections on one
// listening socket, the classic prefork server: the parent opens the
// socket and each worker inherits it, so that the kernel hands every new
// connection to whichever worker accepts first. The workers share nothing
// else; the database is the only place where they meet.
//
// Each worker is the program Exe run with Args, the socket as file
// descriptor ListenerFD, and its stdin a pipe the parent holds: a worker
// must stop when its stdin closes, so that none outlives a parent that was
// killed. It prints ReadyLine on stdout once it serves (see Serve).
type Prefork struct {
	Exe  string
	Args []string
	// Env is added to the parent's environment for every worker.
	Env []string
	// Stderr receives the workers' stderr; nil discards it.
	Stderr io.Writer
	// N is the number of workers.
	N int
	// ReadyTimeout bounds the wait for every worker to be ready: 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopGrace is how long a worker has to finish its requests after it
	// was told to stop; then it is killed. 0 means DefaultStopGrace.
	StopGrace time.Duration
}

// Workers are the running worker processes of a Prefork. Its methods are
// safe for concurrent use.
type Workers struct {
	procs []*proc
	grace time.Duration
	// exited receives one error per worker that exits before Stop.
	exited chan error

	mu       sync.Mutex // guards stopping
	stopping bool       // Stop has begun: exits are expected
}

// proc is one worker process.
type proc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed when the process has exited and been reaped
	err   error         // its exit status, set before done is closed
}

// Start starts p.N workers serving ln and waits until each is ready. On
// failure it stops those it started and returns why. ctx governs the wait.
// The caller may close ln once Start returns: the workers hold their own
// descriptors of the socket.
func (p Prefork) Start(ctx context.Context, ln *net.TCPListener) (*Workers, error) {
	if p.N < 1 {
		return nil, fmt.Errorf("serve: start workers: need at least 1 worker, got %d", p.N)
	}
	f, err := ln.File()
	if err != nil {
		return nil, fmt.Errorf("serve: start workers: share the listening socket: %w", err)
	}
	defer f.Close()
	grace := p.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	wait := p.ReadyTimeout
	if wait <= 0 {
		wait = DefaultReadyTimeout
	}
	ws := &Workers{grace: grace, exited: make(chan error, p.N)}
	ready := make(chan error, p.N)
	for i := range p.N {
		pr, err := p.start(i, f, ready, ws)
		if err != nil {
			ws.Stop()
			return nil, err
		}
		ws.procs = append(ws.procs, pr)
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for range p.N {
		var err error
		select {
		case err = <-ready:
		case <-timeout.C:
			err = fmt.Errorf("serve: start workers: not all %d ready within %v", p.N, wait)
		case <-ctx.Done():
			err = fmt.Errorf("serve: start workers: %w", ctx.Err())
		}
		if err != nil {
			ws.Stop()
			return nil, err
		}
	}
	return ws, nil
}

func (p Prefork) start(i int, ln *os.File, ready chan<- error, ws *Workers) (*proc, error) {
	cmd := exec.Command(p.Exe, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.ExtraFiles = []*os.File{ln}
	cmd.Stderr = p.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("serve: start worker %d: %w", i, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("serve: start worker %d: %w", i, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("serve: start worker %d: %w", i, err)
	}
	pr := &proc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	// Read the ready line, then drain stdout, before Wait: Wait closes the
	// pipe.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, ReadyLine) {
			ready <- nil
		} else {
			ready <- fmt.Errorf("serve: worker %d (pid %d) exited before it was ready (%v); its error is above", i, cmd.Process.Pid, firstNonNil(err, errors.New("unexpected output "+strings.TrimSpace(line))))
		}
		io.Copy(io.Discard, r)
	}()
	go func() {
		<-drained
		pr.err = cmd.Wait()
		close(pr.done)
		ws.mu.Lock()
		expected := ws.stopping
		ws.mu.Unlock()
		if !expected {
			ws.exited <- fmt.Errorf("serve: worker %d (pid %d) exited: %v", i, cmd.Process.Pid, firstNonNil(pr.err, errors.New("exit status 0")))
		}
	}()
	return pr, nil
}

func firstNonNil(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// PIDs returns the workers' process ids.
func (ws *Workers) PIDs() []int {
	out := make([]int, len(ws.procs))
	for i, p := range ws.procs {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// Exited receives an error for each worker that exits on its own, before
// Stop.
func (ws *Workers) Exited() <-chan error { return ws.exited }

// Stop tells every worker to stop (an interrupt, then the end of its
// stdin), waits until each has exited, killing any that is still running
// after the grace period, and reports the workers that had to be killed.
// It is safe to call more than once.
func (ws *Workers) Stop() error {
	ws.mu.Lock()
	ws.stopping = true
	ws.mu.Unlock()
	for _, p := range ws.procs {
		p.cmd.Process.Signal(os.Interrupt)
		p.stdin.Close()
	}
	deadline := time.NewTimer(ws.grace)
	defer deadline.Stop()
	var killed []string
	for _, p := range ws.procs {
		select {
		case <-p.done:
			continue
		case <-deadline.C:
		}
		// Past the grace period: kill this one and every other still
		// running.
		for _, q := range ws.procs {
			select {
			case <-q.done:
			default:
				q.cmd.Process.Kill()
				killed = append(killed, fmt.Sprint(q.cmd.Process.Pid))
			}
		}
		break
	}
	for _, p := range ws.procs {
		<-p.done
	}
	if len(killed) > 0 {
		return fmt.Errorf("serve: stop workers: killed %s, still running %v after being told to stop", strings.Join(killed, ", "), ws.grace)
	}
	return nil
}
