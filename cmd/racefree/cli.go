package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/mysqldialect"  // mysql:// and user@tcp(…)/db
	_ "github.com/racefree/racefree/dialect/pgdialect"     // postgres://
	_ "github.com/racefree/racefree/dialect/sqlitedialect" // sqlite:path
)

// workerCommand is the hidden subcommand the lab runs in each of its worker
// processes: the racefree binary re-executed.
const workerCommand = "lab-worker"

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130 // as a shell reports a process stopped by SIGINT
)

// errInterrupted: the run was stopped by a signal after reporting what it
// measured.
var errInterrupted = errors.New("interrupted")

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usage = `racefree shows the classic database races, and how racefree avoids them.

Usage:
  racefree demo      watch the races happen on an embedded SQLite (about 30 s, nothing to install)
  racefree lab       run scenarios × strategies from many processes against your database
  racefree doctor    tell whether a get-or-create on a table is safe, and why
  racefree serve     the classic race as a web page, served by several processes
  racefree bench     measure racefree against the raw statements on your database, and how it scales
  racefree version   print the version this binary was built from

Run 'racefree COMMAND -h' for a command's flags.
`

// Main runs the racefree command with args (without the program name) and
// returns the exit code. It never exits the process itself. An interrupt
// or SIGTERM cancels the command, which then stops cleanly and reports
// what it has.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	var err error
	switch name {
	case "demo":
		err = (&DemoCommand{}).Run(ctx, rest, stdout, stderr)
	case "lab":
		err = (&LabCommand{}).Run(ctx, rest, stdout, stderr)
	case "doctor":
		err = (&DoctorCommand{}).Run(ctx, rest, stdout)
	case "serve":
		err = (&ServeCommand{}).Run(ctx, rest, stdout, stderr)
	case workerCommand:
		err = (&WorkerCommand{}).Run(ctx, rest, stdin, stdout)
	case serveWorkerCommand:
		err = (&ServeWorkerCommand{}).Run(ctx, rest, stdin, stdout)
	case "bench":
		err = (&BenchCommand{}).Run(ctx, rest, stdout, stderr)
	case benchWorkerCommand:
		err = (&BenchWorkerCommand{}).Run(ctx, rest, stdin, stdout)
	case "version", "-version", "--version":
		err = (&VersionCommand{}).Run(rest, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "racefree: unknown command %q (commands: demo, lab, doctor, serve, bench, version; see racefree help)\n", name)
		return exitUsage
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(stderr, "racefree %s: interrupted; the results above are what was measured until then\n", name)
		return exitInterrupted
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "racefree %s: %s (see racefree %s -h)\n", name, oneLine(err.Error()), name)
		return exitUsage
	default:
		// "racefree doctor: explain users: …" rather than "racefree
		// doctor: racefree: explain users: …".
		fmt.Fprintf(stderr, "racefree %s: %s\n", name, strings.TrimPrefix(oneLine(err.Error()), "racefree: "))
		return exitFailure
	}
}

// oneLine keeps an error to one line: drivers sometimes spread one over
// several (pgx lists each address it tried on a line of its own).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseFlags parses a subcommand's flags, printing the usage to stdout for
// -h and nothing else: a flag error comes back as one usageError line.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: racefree %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// openDB opens dsn and reaches the server within a bounded time, so that an
// unreachable server is one clear line rather than a hang.
// openTimeout bounds how long openDB waits for a server that refuses or
// turns away connections (racefree.Open waits out an outage): long enough
// for a restart, short enough for a typo. Tests shorten it.
var openTimeout = 15 * time.Second

func openDB(ctx context.Context, dsn string) (*racefree.DB, error) {
	if dsn == "" {
		return nil, usagef("--dsn is required (for example postgres://user@localhost:5432/db, mysql://root@localhost:3306/db, sqlite:./lab.db)")
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	db, err := racefree.Open(ctx, dsn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open %s: no answer from the server within %v: %w", redact(dsn), openTimeout, err)
		}
		return nil, fmt.Errorf("open %s: %w", redact(dsn), err)
	}
	return db, nil
}

// redact hides a password in a DSN before it is printed.
func redact(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	if at < 0 {
		return dsn
	}
	head := dsn[:at]
	start := 0
	if i := strings.Index(head, "://"); i >= 0 {
		start = i + 3
	}
	if c := strings.IndexByte(head[start:], ':'); c >= 0 {
		return head[:start+c+1] + "xxxxx" + dsn[at:]
	}
	return dsn
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
