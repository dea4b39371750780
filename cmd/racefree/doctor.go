package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// DoctorCommand tells whether a get-or-create on a table's columns is safe
// on a database, and why.
type DoctorCommand struct {
	dsn    string
	table  string
	lookup string
	procs  int // processes of the fleet, for the connection budget
	pool   int // connections per process's pool
}

const doctorSynopsis = `doctor --dsn DSN --table T --lookup COL[,COL…] [--procs N --pool P]

Reads the table from the database's catalog and the session's settings, and
tells whether a get-or-create on the lookup columns is safe there and why: a
unique index covering exactly those columns or not, NULLable lookup columns
and NULLS NOT DISTINCT, the isolation level, SQLite's journal mode and busy
timeout; and which strategy racefree.GetOrCreate will use. On a server it
also reports the connection limit, the sessions open now, whether a
fleet of N processes with pools of P connections fits under the limit, and
whether a transaction-pooling proxy (PgBouncer in transaction mode) sits in
front, which silently breaks session locks.`

// Run runs the doctor.
func (c *DoctorCommand) Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database: postgres://…, mysql://…, sqlite:FILE")
	fs.StringVar(&c.table, "table", "", "table (or schema.table)")
	fs.StringVar(&c.lookup, "lookup", "", "comma-separated lookup columns")
	fs.IntVar(&c.procs, "procs", 0, "processes of the fleet that share the server (for the connection budget)")
	fs.IntVar(&c.pool, "pool", 0, "connections each process's pool may open (SetMaxOpenConns; for the connection budget)")
	if err := parseFlags(fs, args, stdout, doctorSynopsis); err != nil {
		return err
	}
	var cols []string
	for _, s := range strings.Split(c.lookup, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(cols, s) {
			cols = append(cols, s)
		}
	}
	switch {
	case c.table == "":
		return usagef("--table is required")
	case len(cols) == 0:
		return usagef("--lookup is required: the columns a get-or-create looks rows up by")
	case c.procs < 0 || c.pool < 0:
		return usagef("--procs and --pool must not be negative")
	case (c.procs == 0) != (c.pool == 0):
		return usagef("--procs and --pool go together: the fleet's processes and each one's pool size")
	}
	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ex, err := racefree.Explain(ctx, db, c.table, cols...)
	if err != nil {
		return err
	}
	rep := diagnose(ex, db.Dialect())
	session, err := sessionFacts(ctx, db)
	if err != nil {
		return err
	}

	p := func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "%-14s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	p("engine", "%s", ex.Server)
	p("table", "%s, lookup (%s)", ex.Table, strings.Join(ex.Lookup, ", "))
	for _, l := range rep.index {
		p("unique index", "%s", l)
	}
	for _, l := range rep.nulls {
		p("NULLs", "%s", l)
	}
	for _, l := range session {
		p(l[0], "%s", l[1])
	}
	conns, err := connectionFacts(ctx, db, c.procs, c.pool)
	if err != nil {
		return err
	}
	for _, l := range conns {
		p("connections", "%s", l)
	}
	if v, ok, err := findPooler(ctx, db); err != nil {
		return err
	} else if ok {
		p("pooler", "%s", v.line())
	}
	p("racefree", "%s", rep.strategy)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, rep.verdict)
	return nil
}

// diagnosis is what the doctor found about a table and lookup.
type diagnosis struct {
	index    []string // lines about unique indexes
	nulls    []string // lines about NULLable lookup columns
	strategy string   // what racefree.GetOrCreate will do
	verdict  string   // the answer, in plain words
}

// diagnose puts the library's own plan (racefree.Explain) in the words of
// a diagnosis: it decides nothing itself.
func diagnose(ex racefree.Explanation, d dialect.Dialect) diagnosis {
	var dg diagnosis
	cols := strings.Join(ex.Lookup, ", ")
	if ix := ex.Index; ix != nil {
		kind := "unique index"
		if ix.Primary {
			kind = "primary key"
		}
		dg.index = append(dg.index, fmt.Sprintf("%s %s (%s) covers the lookup exactly", kind, ix.Name, strings.Join(ix.Columns, ", ")))
	} else {
		dg.index = append(dg.index, fmt.Sprintf("none covers exactly (%s)", cols))
	}
	for _, ix := range ex.Narrower {
		dg.index = append(dg.index, fmt.Sprintf("%s (%s) is narrower than the lookup: it also forbids rows the lookup tells apart (racefree re-reads after its violations to tell a lost race)", ix.Name, strings.Join(ix.Columns, ", ")))
	}
	for _, ix := range ex.Wider {
		dg.index = append(dg.index, fmt.Sprintf("%s (%s) is wider than the lookup: two rows with the same lookup can still differ in its other columns", ix.Name, strings.Join(ix.Columns, ", ")))
	}
	nullsOK := ex.Index != nil && ex.Index.NullsNotDistinct
	nullable := strings.Join(ex.Nullable, ", ")
	switch {
	case len(ex.Nullable) == 0:
		dg.nulls = append(dg.nulls, "every lookup column is NOT NULL")
	case nullsOK:
		dg.nulls = append(dg.nulls, fmt.Sprintf("%s accepts NULL, and the index is NULLS NOT DISTINCT: a NULL lookup is still unique", nullable))
	case ex.Index != nil:
		msg := fmt.Sprintf("%s accepts NULL, and a unique index treats NULLs as distinct: two rows with a NULL lookup are not duplicates to it", nullable)
		if d.Features().Has(dialect.NullsNotDistinct) {
			msg += " (this server has UNIQUE NULLS NOT DISTINCT)"
		}
		dg.nulls = append(dg.nulls, msg)
	default:
		dg.nulls = append(dg.nulls, fmt.Sprintf("%s accepts NULL", nullable))
	}
	describe := func(s racefree.Strategy) string {
		switch s {
		case racefree.StrategyConstraint:
			return fmt.Sprintf("constraint: one SELECT; on a miss one INSERT; a unique violation after which the lookup's row is there (read again) is a lost race, answered with the winner's row (index %s)", ex.Index.Name)
		case racefree.StrategySerializable:
			return "serializable: SELECT and INSERT in a SERIALIZABLE transaction, retried"
		}
		return "lock: " + lockKind(d) + " on (table, lookup values) around SELECT and INSERT"
	}
	dg.strategy = describe(ex.Strategy)
	if len(ex.Nullable) > 0 && ex.StrategyWithNull != ex.Strategy {
		dg.strategy += " when no lookup value is NULL; " + describe(ex.StrategyWithNull) + " when one is"
	}
	create := fmt.Sprintf("CREATE UNIQUE INDEX %s_%s_key ON %s (%s)", strings.ReplaceAll(ex.Table, ".", "_"), strings.Join(ex.Lookup, "_"), ex.Table, cols)
	switch {
	case ex.Index != nil && (len(ex.Nullable) == 0 || nullsOK):
		dg.verdict = fmt.Sprintf("SAFE: %s. Plain SELECT-then-INSERT code will not create duplicates here, but its losers get a unique-violation error; racefree.GetOrCreate turns a lost race into the winner's row.", ex.Reason)
	case ex.Index != nil:
		dg.verdict = fmt.Sprintf("SAFE ONLY WITHOUT NULLS: %s; with a NULL in %s, SELECT-then-INSERT code creates duplicates.", ex.Reason, nullable)
	default:
		dg.verdict = fmt.Sprintf("NOT SAFE for plain code: nothing in the database stops two workers from both inserting (%s); a mutex in one process does not help the process beside it. racefree.GetOrCreate stays correct: %s. Faster and safer: %s", cols, ex.Reason, create)
	}
	return dg
}

// lockKind says how the engine's named lock excludes other sessions.
func lockKind(d dialect.Dialect) string {
	f := d.Features()
	switch {
	case f.Has(dialect.SingleWriter):
		return "the database's write transaction, which excludes every other writer"
	case f.Has(dialect.AdvisoryLocks) && f.Has(dialect.OnConflict):
		return "a transaction-scoped advisory lock"
	}
	return "a row lock in the racefree_locks table"
}

// sessionFacts reads the session settings that matter to a get-or-create:
// the isolation level (through the dialect) and what it means for a lost
// race, and for an embedded engine (SQLite) the journal mode and busy
// timeout.
func sessionFacts(ctx context.Context, db *racefree.DB) ([][2]string, error) {
	d := db.Dialect()
	var out [][2]string
	if ir, ok := d.(dialect.IsolationReader); ok {
		iso, err := ir.CurrentIsolation(ctx, db.Session())
		if err != nil {
			return nil, fmt.Errorf("read isolation level: %w", err)
		}
		text := strings.ToLower(iso.String())
		if fr, ok := d.(dialect.FreshReader); ok && !d.Features().Has(dialect.SingleWriter) {
			switch clause, fresh := fr.FreshRead(iso, true); {
			case !fresh:
				text += ": a transaction cannot see a row another committed after it began, so racefree asks RunInTx to restart it when it loses a race"
			case clause != "":
				text += ": inside a transaction a plain re-read after a duplicate-key error sees the old snapshot (\"duplicate, then not found\"); racefree re-reads with" + clause
			}
		}
		if d.Features().Has(dialect.SingleWriter) {
			text += " (one writer at a time)"
		}
		out = append(out, [2]string{"isolation", text})
	}
	if !d.Features().Has(dialect.Embedded) || db.SQL() == nil {
		return out, nil
	}
	var mode string
	var busy int64
	q := db.SQL()
	if err := q.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if err := q.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		return nil, fmt.Errorf("read busy timeout: %w", err)
	}
	jm := mode
	if mode != "wal" {
		jm += ": readers and the writer block each other; WAL lets reads go on while one writes"
	}
	bt := fmt.Sprintf("%d ms", busy)
	if busy == 0 {
		bt += ": a writer that finds the database locked fails at once with SQLITE_BUSY"
	}
	return append(out, [2]string{"journal mode", jm}, [2]string{"busy timeout", bt}), nil
}

// connectionFacts reports the server's connection budget and, for a fleet
// of procs processes with pools of pool connections, whether it fits: a
// fleet over the limit has its logins refused (ErrUnavailable), which
// racefree waits out but cannot make disappear.
func connectionFacts(ctx context.Context, db *racefree.DB, procs, pool int) ([]string, error) {
	cl, ok := db.Dialect().(dialect.ConnLimiter)
	if !ok {
		return nil, nil // an embedded engine: no sessions to count
	}
	l, err := cl.ConnLimits(ctx, db.Session())
	if err != nil {
		return nil, fmt.Errorf("read connection limits: %w", err)
	}
	avail := l.Available()
	line := fmt.Sprintf("the server accepts %d sessions", l.Max)
	if l.Reserved > 0 {
		line += fmt.Sprintf(", %d of them kept for administrators", l.Reserved)
	}
	if l.PerUser > 0 {
		line += fmt.Sprintf("; this user may open %d", l.PerUser)
	}
	lines := []string{line + fmt.Sprintf("; %d open now: %d left for this user", l.InUse, max(avail-l.InUse, 0))}
	if procs == 0 {
		return append(lines, "pass --procs N --pool P to check a fleet of N processes with pools of P connections against the limit"), nil
	}
	need := procs * pool
	switch {
	case need <= avail:
		lines = append(lines, fmt.Sprintf("a fleet of %d processes with pools of %d needs up to %d: it fits (%d to spare, before other clients' %d open now)",
			procs, pool, need, avail-need, l.InUse))
	default:
		lines = append(lines, fmt.Sprintf("a fleet of %d processes with pools of %d needs up to %d: %d over the limit of %d; logins beyond it are refused (racefree waits them out as ErrUnavailable, but the fleet only ever gets %d). Lower the pool to %d per process, raise the server's limit, or put a connection pooler in front",
			procs, pool, need, need-avail, avail, avail, max(avail/procs, 1)))
	}
	return lines, nil
}
