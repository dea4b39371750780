package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Restarter is the restart chaos: every Interval it runs Cmd (with sh -c),
// which restarts the database server, and measures how long the server
// was unreachable: from the command's start until Ping succeeds.
type Restarter struct {
	Cmd      string
	Interval time.Duration
	// Ping makes a fresh connection to the server and returns its error.
	Ping func(ctx context.Context) error
}

// RestartTimeout bounds one restart: the command and the wait for the
// server to answer again.
const RestartTimeout = 2 * time.Minute

// Restarts is what the restart chaos did.
type Restarts struct {
	// Outages holds, per restart, how long the server did not answer.
	Outages []time.Duration
	// Err is the first failure: the command failed, or the server did not
	// come back within RestartTimeout. Restarts stop after it.
	Err error
}

// Run restarts the server every Interval, the first time Interval after
// begin, until ctx ends or deadline is too close for another restart.
func (r *Restarter) Run(ctx context.Context, begin, deadline time.Time) Restarts {
	var res Restarts
	next := begin.Add(r.Interval)
	for {
		if next.After(deadline) {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-time.After(time.Until(next)):
		}
		outage, err := r.restartOnce(ctx)
		if err != nil {
			res.Err = err
			return res
		}
		res.Outages = append(res.Outages, outage)
		next = time.Now().Add(r.Interval)
	}
}

func (r *Restarter) restartOnce(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RestartTimeout)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "sh", "-c", r.Cmd).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("restart command %q: %w: %s", r.Cmd, err, strings.TrimSpace(lastLine2(string(out))))
	}
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.Ping(pctx)
		pcancel()
		if err == nil {
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("server not back %v after restart: %w", RestartTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
