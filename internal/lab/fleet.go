package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// A Fleet is the worker processes of one strategy's run. It starts Procs
// of them, gives them a common start once every one is connected (see
// Control), collects the report each prints, and survives the death of
// any: a process that dies without reporting (a crash, the OOM killer, a
// kill by the chaos below) is recorded as a Death and what it had done is
// read from its tally file, while the others go on.
//
// With Kill set, the fleet is also the chaos that kills: every Kill it
// sends SIGKILL to a random live worker process and starts a replacement,
// which joins the run as soon as it is connected and stops at the common
// deadline.
type Fleet struct {
	// Exe is the program to run: the racefree binary itself.
	Exe string
	// Procs is the number of worker processes running at once.
	Procs int
	// Args returns the arguments of the worker process in slot (0 to
	// Procs-1); n counts processes started (replacements included), for
	// seeds. The fleet adds "-tally FILE".
	Args func(slot, n int) []string
	// Duration is the run's length from the common start.
	Duration time.Duration
	// Started, if set, is called with the common start and the deadline
	// once they are chosen, before any process learns them: the chaos
	// that is not the fleet's own runs between the two.
	Started func(start, deadline time.Time)
	// Kill, if positive, is the interval of the kill chaos.
	Kill time.Duration
	// Dir holds the tally files; "" is the system's temporary directory.
	Dir string
}

// ReadyTimeout is how long a fleet waits for its slowest worker process to
// connect before it starts the others without it (it joins when it is
// ready). A process retrying a server that restarts may take this long.
const ReadyTimeout = 2 * time.Minute

// startLead is the time between choosing the common start and the start:
// enough for every process to read its start line.
const startLead = 100 * time.Millisecond

// Death is a worker process that exited without its report.
type Death struct {
	Proc int `json:"proc"` // the process's number: 0 to Procs-1, then replacements
	Slot int `json:"slot"`
	PID  int `json:"pid"`
	// Cause says why, in words: "killed by --chaos kill", or the exit
	// status and the last line the process wrote on stderr.
	Cause   string `json:"cause"`
	ByChaos bool   `json:"by_chaos"`
	// Ops is the calls it had finished; InFlight the calls it had begun
	// and not finished, whose outcome nobody learned.
	Ops      int64 `json:"ops"`
	InFlight int64 `json:"in_flight"`
}

// FleetResult is what a fleet's processes did.
type FleetResult struct {
	// Parts holds one Part per process that ran: its report, or, for one
	// that died, what its tally file says.
	Parts  []Part
	Deaths []Death
	// Kills counts SIGKILLs sent by the kill chaos.
	Kills int
	// Ports lists the local ports of every connection the processes made,
	// as their tallies recorded them.
	Ports []int
	// Reported counts the processes that printed a report.
	Reported int
}

// proc is one running worker process.
type proc struct {
	n, slot int
	cmd     *exec.Cmd
	tally   string
	ready   chan struct{} // closed when the process says it is ready
	exited  chan struct{} // closed when it has exited
	chaos   bool          // killed by the kill chaos; guarded by Fleet.run's mu
}

// Run starts the fleet and waits for it. When ctx ends, each process is
// sent an interrupt, so that it stops starting calls and reports what it
// measured; one that has not exited StopGrace later is killed. It fails
// only when no process could be started at all.
func (f *Fleet) Run(ctx context.Context) (FleetResult, error) {
	var (
		mu    sync.Mutex // guards res, live and next
		res   FleetResult
		live  = map[*proc]bool{}
		next  int
		wg    sync.WaitGroup
		first error
		// started is closed once the common start is chosen: start and
		// deadline are read only after it.
		started         = make(chan struct{})
		start, deadline time.Time
	)
	launch := func(slot int) (*proc, error) {
		mu.Lock()
		n := next
		next++
		mu.Unlock()
		tally, err := NewTallyFile(f.Dir)
		if err != nil {
			return nil, err
		}
		p := &proc{n: n, slot: slot, tally: tally, ready: make(chan struct{}), exited: make(chan struct{})}
		p.cmd = exec.Command(f.Exe, append(f.Args(slot, n), "-tally", tally)...)
		p.cmd.Env = append(os.Environ(), WorkerEnv+"=1")
		stdout := &readyWriter{ready: p.ready}
		var stderr bytes.Buffer
		p.cmd.Stdout, p.cmd.Stderr = stdout, &stderr
		stdin, err := p.cmd.StdinPipe()
		if err != nil {
			os.Remove(tally)
			return nil, fmt.Errorf("worker process %d: %w", n, err)
		}
		if err := p.cmd.Start(); err != nil {
			os.Remove(tally)
			return nil, fmt.Errorf("start worker process %d: %w", n, err)
		}
		mu.Lock()
		live[p] = true
		mu.Unlock()
		wg.Go(func() {
			// The start, once the process is ready and the start chosen.
			select {
			case <-p.exited:
				return
			case <-p.ready:
			}
			select {
			case <-p.exited:
			case <-started:
				fmt.Fprintf(stdin, "%s%d\n", startPrefix, start.UnixNano())
			}
		})
		wg.Go(func() {
			go func() {
				select {
				case <-p.exited:
					return
				case <-ctx.Done():
				}
				p.cmd.Process.Signal(os.Interrupt)
				select {
				case <-p.exited:
				case <-time.After(StopGrace):
					p.cmd.Process.Kill()
				}
			}()
			werr := p.cmd.Wait()
			close(p.exited)
			stdin.Close()
			counts, terr := ReadTally(tally)
			os.Remove(tally)
			mu.Lock()
			defer mu.Unlock()
			delete(live, p)
			res.Ports = append(res.Ports, counts.Ports...)
			var part Part
			if jerr := json.Unmarshal(lastLine(stdout.Bytes()), &part); jerr == nil {
				res.Parts = append(res.Parts, part)
				res.Reported++
				return
			}
			d := Death{Proc: p.n, Slot: p.slot, PID: p.cmd.Process.Pid, ByChaos: p.chaos}
			switch {
			case p.chaos:
				d.Cause = "killed by --chaos kill"
			default:
				d.Cause = deathCause(werr, stderr.String())
			}
			if terr == nil {
				part = PartFromTally(counts)
				d.Ops, d.InFlight = part.Ops, part.InFlight
				res.Parts = append(res.Parts, part)
			} else {
				d.Cause += "; its counts are lost: " + terr.Error()
			}
			res.Deaths = append(res.Deaths, d)
		})
		return p, nil
	}
	var procs []*proc
	for slot := range f.Procs {
		p, err := launch(slot)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		procs = append(procs, p)
	}
	if len(procs) == 0 {
		close(started)
		wg.Wait()
		return res, first
	}
	// The common start: once every process is ready (or gone), or when
	// the slowest has had ReadyTimeout.
	giveUp := time.After(ReadyTimeout)
wait:
	for _, p := range procs {
		select {
		case <-p.ready:
		case <-p.exited:
		case <-giveUp:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	start = time.Now().Add(startLead)
	deadline = start.Add(f.Duration)
	if f.Started != nil {
		f.Started(start, deadline)
	}
	close(started)
	if f.Kill > 0 {
		replace := func(slot int) error { _, err := launch(slot); return err }
		wg.Go(func() { f.killLoop(ctx, deadline, &mu, live, &res, replace) })
	}
	wg.Wait()
	return res, nil
}

// readyWriter keeps a worker process's stdout and closes ready when the
// process prints readyLine.
type readyWriter struct {
	mu    sync.Mutex // guards buf and seen: Wait reads buf after the copying ends
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.seen && bytes.Contains(w.buf.Bytes(), []byte(readyLine+"\n")) {
		w.seen = true
		close(w.ready)
	}
	return len(b), nil
}

// Bytes returns everything the process printed.
func (w *readyWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Bytes()
}

// killLoop is the kill chaos: every f.Kill until the deadline, SIGKILL a
// random live process and start a replacement in its slot.
func (f *Fleet) killLoop(ctx context.Context, deadline time.Time, mu *sync.Mutex, live map[*proc]bool, res *FleetResult, start func(int) error) {
	t := time.NewTicker(f.Kill)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Until(deadline) < 500*time.Millisecond {
			return // too late for a replacement to do anything
		}
		mu.Lock()
		var victims []*proc
		for p := range live {
			if !p.chaos {
				victims = append(victims, p)
			}
		}
		var v *proc
		if len(victims) > 0 {
			v = victims[rand.IntN(len(victims))]
			v.chaos = true
			res.Kills++
		}
		mu.Unlock()
		if v == nil {
			continue
		}
		v.cmd.Process.Kill()
		if err := start(v.slot); err != nil {
			mu.Lock()
			res.Deaths = append(res.Deaths, Death{Proc: -1, Slot: v.slot, Cause: "replacement failed to start: " + err.Error()})
			mu.Unlock()
		}
	}
}

// deathCause says why a process ended without a report.
func deathCause(err error, stderr string) string {
	msg := strings.TrimSpace(lastLine2(stderr))
	switch {
	case err != nil && msg != "":
		return err.Error() + ": " + msg
	case err != nil:
		return err.Error()
	case msg != "":
		return "exited without a report: " + msg
	}
	return "exited without a report"
}
