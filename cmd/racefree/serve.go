package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/serve"
)

// serveWorkerCommand is the hidden subcommand each worker process of
// `racefree serve` runs: the racefree binary re-executed.
const serveWorkerCommand = "serve-worker"

// serveDSNEnv carries the DSN to the worker processes: in the environment,
// unlike the command line, a password is not shown to every user of the
// machine by ps.
const serveDSNEnv = "RACEFREE_SERVE_DSN"

// defaultServeDB is the SQLite file racefree serve uses without --dsn, in
// the current directory.
const defaultServeDB = "racefree-serve.db"

// ServeCommand serves the classic race as a web page from several worker
// processes that share one listening port.
type ServeCommand struct {
	addr     string
	procs    int
	dsn      string
	requests int
	think    time.Duration
	prefix   string
	drop     bool
}

const serveSynopsis = `serve [--addr HOST:PORT] [--procs N] [--dsn DSN] [--requests N] [--think D]

Serves a web page on which one click sends several requests at once for the
same name to naive get-or-create code and to racefree.GetOrCreate, side by
side, and the same for bank transfers. --procs worker processes share one
listening port, as a prefork web server does. Without --dsn the data lives in
` + defaultServeDB + ` in the current directory (SQLite). Ctrl-C stops the
server and its workers.`

// Run runs the server until ctx ends.
func (c *ServeCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	fs.IntVar(&c.procs, "procs", serve.DefaultProcs, "worker processes sharing the listening port")
	fs.StringVar(&c.dsn, "dsn", "", "database: postgres://…, mysql://…, sqlite:FILE (default: sqlite:"+defaultServeDB+" in the current directory)")
	fs.IntVar(&c.requests, "requests", serve.DefaultRequests, "concurrent requests per click (the page can change it)")
	fs.DurationVar(&c.think, "think", serve.DefaultThink, "pause of the naive handlers between their read and their write (0: none); shown on the page")
	fs.StringVar(&c.prefix, "prefix", serve.DefaultPrefix, "start of the names of the four tables the page uses")
	fs.BoolVar(&c.drop, "drop", false, "drop those tables when the server stops")
	if err := parseFlags(fs, args, stdout, serveSynopsis); err != nil {
		return err
	}
	cfg := serve.Config{Procs: c.procs, Requests: c.requests, Think: c.think, Prefix: c.prefix}
	if err := cfg.Validate(); err != nil {
		return usagef("--%s", err)
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return usagef("--addr %q: want HOST:PORT, for example 127.0.0.1:8080: %v", c.addr, err)
	}
	if c.dsn == "" {
		abs, err := filepath.Abs(defaultServeDB)
		if err != nil {
			return fmt.Errorf("find the current directory: %w", err)
		}
		c.dsn = "sqlite:" + abs
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start worker processes: %w", err)
	}

	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// Take the port before touching the tables: a port in use changes
	// nothing.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err) // names the address
	}
	defer ln.Close()
	if err := serve.Setup(ctx, db, c.prefix); err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	if c.drop {
		defer func() {
			if err := serve.Drop(bg, db, c.prefix); err != nil {
				fmt.Fprintf(stderr, "racefree serve: %v\n", err)
			}
		}()
	}
	iso, err := serve.Isolation(ctx, db)
	if err != nil {
		return err
	}

	workers, err := serve.Prefork{
		Exe: exe,
		Args: []string{serveWorkerCommand,
			"-procs", strconv.Itoa(c.procs), "-requests", strconv.Itoa(c.requests),
			"-think", c.think.String(), "-prefix", c.prefix},
		// lab.WorkerEnv lets a test binary that re-executes itself act as
		// racefree (see TestMain).
		Env:    []string{serveDSNEnv + "=" + c.dsn, lab.WorkerEnv + "=1"},
		Stderr: stderr,
		N:      c.procs,
	}.Start(ctx, ln.(*net.TCPListener))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// The workers hold the socket now; the parent only watches them.
	ln.Close()

	pids := workers.PIDs()
	fmt.Fprintf(stdout, "racefree serve: %s\n", pageURL(ln.Addr().(*net.TCPAddr)))
	fmt.Fprintf(stdout, "  %s on %s, isolation level %s\n", db.Dialect().Server(), redact(c.dsn), iso)
	fmt.Fprintf(stdout, "  %s sharing the port: pids %s\n", plural(c.procs, "worker process", "worker processes"), joinInts(pids, ", "))
	fmt.Fprintf(stdout, "  naive think time %v; Ctrl-C stops\n", c.think)

	var died error
	select {
	case <-ctx.Done():
	case died = <-workers.Exited():
		// Ctrl-C in a terminal interrupts the whole process group: a
		// worker may stop before this process has seen the signal.
		select {
		case <-ctx.Done():
			died = nil
		case <-time.After(time.Second):
		}
	}
	stopErr := workers.Stop()
	if died != nil {
		return errors.Join(fmt.Errorf("%w; stopped the others", died), stopErr)
	}
	if stopErr != nil {
		return stopErr
	}
	fmt.Fprintf(stdout, "racefree serve: stopped; all %s exited\n", plural(c.procs, "worker process", "worker processes"))
	return nil
}

// pageURL is the address to open in a browser: an unspecified listening
// address (0.0.0.0, ::) is reachable on the loopback.
func pageURL(a *net.TCPAddr) string {
	host := a.IP.String()
	switch {
	case a.IP.IsUnspecified() && a.IP.To4() != nil, a.IP == nil:
		host = "127.0.0.1"
	case a.IP.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)) + "/"
}
