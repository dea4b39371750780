package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/serve"
)

// ServeWorkerCommand is the hidden subcommand each worker process of
// `racefree serve` runs: it serves the page on the listening socket it
// inherited, until it is interrupted or its parent goes away.
type ServeWorkerCommand struct {
	cfg serve.Config
}

// Run runs the worker process.
func (c *ServeWorkerCommand) Run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet(serveWorkerCommand, flag.ContinueOnError)
	fs.IntVar(&c.cfg.Procs, "procs", serve.DefaultProcs, "worker processes in all")
	fs.IntVar(&c.cfg.Requests, "requests", serve.DefaultRequests, "requests per click")
	fs.DurationVar(&c.cfg.Think, "think", time.Duration(0), "think time")
	fs.StringVar(&c.cfg.Prefix, "prefix", serve.DefaultPrefix, "table name prefix")
	if err := parseFlags(fs, args, io.Discard, serveWorkerCommand); err != nil {
		return err
	}
	dsn := os.Getenv(serveDSNEnv)
	if dsn == "" {
		return fmt.Errorf("%s is not set: this command is started by racefree serve", serveDSNEnv)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lab.WatchStdin(stdin, cancel) // the parent holds stdin open; it closes when the parent dies
	ln, err := serve.InheritedListener()
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := openDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	app, err := serve.New(ctx, db, c.cfg)
	if err != nil {
		return err
	}
	return serve.Serve(ctx, ln, app.Handler(), stdout)
}
