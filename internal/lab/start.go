package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The start handshake between a Fleet and its worker processes. A worker
// connects, prints readyLine on its stdout and waits; once every worker of
// the fleet is ready, the fleet writes the common start to each one's
// stdin as "start UNIXNANO". The start is thus chosen after the slowest
// process has connected, however long a loaded machine takes to start
// processes and open connections (PostgreSQL forks a backend for each),
// rather than guessed in advance: a guess that came too early left a slow
// process no time to run at all.

// readyLine is what a worker process prints when it is connected and
// waiting for the start.
const readyLine = "racefree-worker: ready"

// startPrefix begins the line that gives a worker process the start.
const startPrefix = "start "

// A Start says when a run's workers begin: the first call waits for it.
type Start func(ctx context.Context) (time.Time, error)

// At is a Start known in advance.
func At(t time.Time) Start {
	return func(context.Context) (time.Time, error) { return t, nil }
}

// Control is a worker process's end of its stdin, which the parent holds
// open: the parent's death ends it, and the start arrives on it.
type Control struct {
	start chan time.Time
}

// WatchStdin reads a worker process's stdin: it cancels when r reaches its
// end or fails, so that the process stops when the parent dies, and it
// passes the start line on to the returned Control.
func WatchStdin(r io.Reader, cancel context.CancelFunc) *Control {
	c := &Control{start: make(chan time.Time, 1)}
	go func() {
		defer cancel()
		lines := bufio.NewScanner(r)
		for lines.Scan() {
			ns, ok := strings.CutPrefix(lines.Text(), startPrefix)
			if !ok {
				continue
			}
			if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
				select {
				case c.start <- time.Unix(0, n):
				default: // a second start line: the first stands
				}
			}
		}
	}()
	return c
}

// Start is the Start of a worker process: it tells the parent on w that
// the process is ready, then waits for the start line.
func (c *Control) Start(w io.Writer) Start {
	return func(ctx context.Context) (time.Time, error) {
		if _, err := fmt.Fprintln(w, readyLine); err != nil {
			return time.Time{}, fmt.Errorf("report ready: %w", err)
		}
		select {
		case t := <-c.start:
			return t, nil
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
