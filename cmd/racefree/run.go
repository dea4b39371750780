package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/lab"
)

// runner runs one strategy at a time from procs OS processes of this
// program, each with workers goroutines, spread over the nodes.
type runner struct {
	db       *racefree.DB   // the first node: tables are made and checked there
	nodes    []*racefree.DB // every node, the first included
	dsns     []string       // one per node
	workers  int
	procs    int
	duration time.Duration
	keep     bool // keep the tables after the run, for inspection
	chaos    lab.Chaos
	// restartCmd restarts the server, for the restart chaos.
	restartCmd string
	// progress, if set, is called when a strategy's workers start, with
	// the time they start.
	progress func(spec *lab.Spec, start time.Time)
}

// run creates the spec's table, runs the worker processes (and the chaos),
// reads the verdict from the database, looks for what the run left on the
// server, and drops the table. When ctx ends during the run, the workers
// stop, and the result holds what was measured until then. A worker
// process that dies is reported in the result; the run goes on without it.
func (r *runner) run(ctx context.Context, spec *lab.Spec) (lab.Result, error) {
	d := r.db.Dialect()
	spec.Table = lab.TableName(spec.Scenario)
	exe, err := os.Executable()
	if err != nil {
		return lab.Result{}, fmt.Errorf("find this program to start worker processes: %w", err)
	}
	// Table work must complete even when the run is interrupted.
	bg := context.WithoutCancel(ctx)
	if err := lab.Setup(bg, r.db.SQL(), d.Name(), spec); err != nil {
		return lab.Result{}, err
	}
	if !r.keep {
		defer lab.Drop(bg, r.db.SQL(), spec)
	}
	if len(r.nodes) > 1 {
		if err := r.waitForTable(bg, spec); err != nil {
			return lab.Result{}, err
		}
	}

	var proxies []*cutproxy.Proxy
	if r.chaos.Cut > 0 {
		for _, dsn := range r.dsns {
			addr, err := lab.ServerAddr(dsn)
			if err != nil {
				return lab.Result{}, fmt.Errorf("--chaos cut: %w", err)
			}
			p, err := cutproxy.Start(addr)
			if err != nil {
				return lab.Result{}, err
			}
			defer p.Close()
			proxies = append(proxies, p)
		}
	}

	// Seeds and the sessions' tag only need to differ between runs; the
	// common start is chosen once every worker process is connected.
	launched := time.Now().UnixNano()
	tag := spec.Table // the sessions' name on the server
	args := []string{workerCommand,
		"-scenario", spec.Scenario, "-strategy", spec.Strategy, "-table", spec.Table,
		"-keys", strconv.Itoa(spec.Keys), "-rotate", spec.Rotate.String(),
		"-workers", strconv.Itoa(r.workers), "-duration", r.duration.String(),
		"-tag", tag,
	}
	if r.chaos.Any() {
		// A replacement may start while the server restarts.
		args = append(args, "-patient", lab.RestartTimeout.String())
	}

	// The chaos that is not the fleet's own runs from the start to the end.
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	var (
		chaos    sync.WaitGroup
		restarts lab.Restarts
	)
	fleet := &lab.Fleet{
		Exe: exe, Procs: r.procs, Duration: r.duration, Kill: r.chaos.Kill,
		Args: func(slot, n int) []string {
			node := slot % len(r.dsns)
			a := append(args[:len(args):len(args)], "-dsn", r.dsns[node], "-seed", strconv.FormatInt(launched+int64(n), 10))
			if proxies != nil {
				a = append(a, "-via", proxies[node].Addr())
			}
			return a
		},
		Started: func(start, deadline time.Time) {
			if r.progress != nil {
				r.progress(spec, start)
			}
			for i, p := range proxies {
				rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))
				chaos.Go(func() {
					cctx, cancel := context.WithDeadline(chaosCtx, deadline)
					defer cancel()
					select {
					case <-cctx.Done():
						return
					case <-time.After(time.Until(start)):
					}
					p.Chaos(cctx, r.chaos.Cut, rng)
				})
			}
			if r.chaos.Restart > 0 {
				rs := &lab.Restarter{Cmd: r.restartCmd, Interval: r.chaos.Restart, Ping: r.ping}
				chaos.Go(func() { restarts = rs.Run(chaosCtx, start, deadline) })
			}
		},
	}

	fr, err := fleet.Run(ctx)
	stopChaos()
	chaos.Wait()
	if err != nil {
		return lab.Result{}, fmt.Errorf("run %s/%s: %w", spec.Scenario, spec.Strategy, err)
	}
	if fr.Reported == 0 && ctx.Err() == nil && len(fr.Deaths) > 0 && !fr.Deaths[0].ByChaos && noCalls(fr.Parts) {
		// Every process failed before doing anything, for the same reason
		// in all likelihood (an unreachable server): say it once.
		return lab.Result{}, fmt.Errorf("run %s/%s: worker process %d: %s", spec.Scenario, spec.Strategy, fr.Deaths[0].Proc, fr.Deaths[0].Cause)
	}
	var total lab.Part
	for _, p := range fr.Parts {
		total.Merge(p)
	}
	if ctx.Err() != nil {
		total.Interrupted = true
	}
	faults := map[string]int64{}
	if fr.Kills > 0 {
		faults[lab.FaultKill] = int64(fr.Kills)
	}
	ports := fr.Ports
	for _, p := range proxies {
		for k, n := range p.Faults() {
			faults[k] += n
		}
		ports = append(ports, p.Ports()...)
		p.Close() // every client is gone: close the server side of what is left
	}
	if n := len(restarts.Outages); n > 0 {
		faults[lab.FaultRestart] = int64(n)
	}

	v, err := r.check(bg, spec, total)
	if err != nil {
		return lab.Result{}, err
	}
	res := lab.NewResult(spec, d.Name(), d.Server(), r.workers, r.procs, total, v)
	res.Nodes = len(r.dsns)
	res.Deaths = fr.Deaths
	if r.chaos.Any() {
		res.Chaos = r.chaos.String()
		res.Faults = faults
	}
	for _, o := range restarts.Outages {
		res.RestartOutagesS = append(res.RestartOutagesS, float64(o.Milliseconds())/1000)
	}
	if restarts.Err != nil {
		res.RestartError = restarts.Err.Error()
	}
	if r.chaos.Any() || len(fr.Deaths) > 0 {
		l, err := r.leftovers(bg, spec, tag, ports)
		if err != nil {
			return lab.Result{}, err
		}
		res.Leftovers = &l
	}
	return res, nil
}

func noCalls(parts []lab.Part) bool {
	for _, p := range parts {
		if p.Ops > 0 || p.InFlight > 0 {
			return false
		}
	}
	return true
}

// check reads the verdict, waiting for the server if it is restarting. On
// a cluster it reads on the first node once that node has applied every
// write certified before (Galera's wsrep_sync_wait).
func (r *runner) check(ctx context.Context, spec *lab.Spec, p lab.Part) (lab.Verdict, error) {
	giveUp := time.Now().Add(lab.RestartTimeout)
	for {
		v, err := r.checkOnce(ctx, spec, p)
		if err == nil || time.Now().After(giveUp) {
			return v, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *runner) checkOnce(ctx context.Context, spec *lab.Spec, p lab.Part) (lab.Verdict, error) {
	conn, err := r.db.SQL().Conn(ctx)
	if err != nil {
		return lab.Verdict{}, fmt.Errorf("check %s: %w", spec.Table, err)
	}
	defer conn.Close()
	if len(r.nodes) > 1 && r.db.Dialect().Name() == "mysql" {
		// Not a Galera node: the variable is unknown or does nothing.
		_, _ = conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1")
	}
	return lab.Check(ctx, conn, spec, p)
}

// leftovers looks on every node for sessions and locks the run left.
func (r *runner) leftovers(ctx context.Context, spec *lab.Spec, tag string, ports []int) (lab.Leftovers, error) {
	rounds := 1
	if spec.Rotate > 0 {
		rounds = int(r.duration/spec.Rotate) + 2
	}
	var total lab.Leftovers
	for i, db := range r.nodes {
		l, err := lab.CheckLeftovers(ctx, db, spec, tag, ports, rounds)
		if err != nil {
			return total, err
		}
		total.Sessions += l.Sessions
		total.Locks += l.Locks
		if len(r.nodes) > 1 {
			l.Words = fmt.Sprintf("node %d: %s", i+1, l.Words)
		}
		if total.Words != "" {
			total.Words += "; "
		}
		total.Words += l.Words
	}
	return total, nil
}

// waitForTable waits until every node sees the run's table (a cluster
// replicates the DDL).
func (r *runner) waitForTable(ctx context.Context, spec *lab.Spec) error {
	giveUp := time.Now().Add(30 * time.Second)
	for i, db := range r.nodes[1:] {
		for {
			var n int64
			err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+spec.Table).Scan(&n)
			if err == nil {
				break
			}
			if time.Now().After(giveUp) {
				return fmt.Errorf("node %d does not see the table %s made on node 1: are the DSNs nodes of one cluster? %w", i+2, spec.Table, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// ping makes a fresh connection to the first node.
func (r *runner) ping(ctx context.Context) error {
	w, err := lab.OpenWorker(ctx, r.dsns[0], lab.ConnOptions{})
	if err != nil {
		return err
	}
	return errors.Join(w.SQL().PingContext(ctx), w.Close())
}
