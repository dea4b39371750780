package main

import (
	"context"
	"errors"
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
}

const doctorSynopsis = `doctor --dsn DSN --table T --lookup COL[,COL…]

Reads the table from the database's catalog and the session's settings, and
tells whether a get-or-create on the lookup columns is safe there and why: a
unique index covering exactly those columns or not, NULLable lookup columns
and NULLS NOT DISTINCT, the isolation level, SQLite's journal mode and busy
timeout; and which strategy racefree.GetOrCreate will use.`

// Run runs the doctor.
func (c *DoctorCommand) Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.StringVar(&c.dsn, "dsn", "", "database: postgres://…, mysql://…, sqlite:FILE")
	fs.StringVar(&c.table, "table", "", "table (or schema.table)")
	fs.StringVar(&c.lookup, "lookup", "", "comma-separated lookup columns")
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
	}
	db, err := openDB(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	d := db.Dialect()
	if _, err := d.Quote(c.table); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	sr, ok := d.(dialect.SchemaReader)
	if !ok {
		return fmt.Errorf("the %s dialect cannot read table definitions", d.Name())
	}
	t, err := sr.ReadTable(ctx, db.Session(), c.table)
	if errors.Is(err, dialect.ErrNoTable) {
		return fmt.Errorf("no table %s in this database", c.table)
	}
	if err != nil {
		return fmt.Errorf("read table %s: %w", c.table, err)
	}
	rep, err := diagnose(t, cols, d)
	if err != nil {
		return err
	}
	session, err := sessionFacts(ctx, db)
	if err != nil {
		return err
	}

	p := func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "%-14s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	p("engine", "%s", d.Server())
	p("table", "%s, lookup (%s)", t.Name, strings.Join(cols, ", "))
	for _, l := range rep.index {
		p("unique index", "%s", l)
	}
	for _, l := range rep.nulls {
		p("NULLs", "%s", l)
	}
	for _, l := range session {
		p(l[0], "%s", l[1])
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
	safe     bool     // a plain SELECT-then-INSERT guarded by a unique index is safe
}

// diagnose applies the rules racefree.GetOrCreate plans by (StrategyAuto) to
// a table read from the catalog.
func diagnose(t *dialect.Table, cols []string, d dialect.Dialect) (diagnosis, error) {
	var dg diagnosis
	var nullable []string
	for _, c := range cols {
		col, ok := t.Column(c)
		if !ok {
			return dg, fmt.Errorf("table %s has no column %q", t.Name, c)
		}
		if col.Nullable {
			nullable = append(nullable, c)
		}
	}
	var cover *dialect.UniqueIndex
	for i := range t.Unique {
		ix := &t.Unique[i]
		if sameSet(ix.Columns, cols) {
			cover = ix
			break
		}
	}
	if cover != nil {
		kind := "unique index"
		if cover.Primary {
			kind = "primary key"
		}
		dg.index = append(dg.index, fmt.Sprintf("%s %s (%s) covers the lookup exactly", kind, cover.Name, strings.Join(cover.Columns, ", ")))
	} else {
		dg.index = append(dg.index, fmt.Sprintf("none covers exactly (%s)", strings.Join(cols, ", ")))
		for _, ix := range t.Unique {
			rel := ""
			switch {
			case subset(ix.Columns, cols):
				rel = "is narrower than the lookup: it also forbids rows the lookup tells apart"
			case subset(cols, ix.Columns):
				rel = "is wider than the lookup: two rows with the same lookup can still differ in its other columns"
			default:
				continue
			}
			dg.index = append(dg.index, fmt.Sprintf("%s (%s) %s", ix.Name, strings.Join(ix.Columns, ", "), rel))
		}
	}
	nullsOK := cover != nil && cover.NullsNotDistinct
	switch {
	case len(nullable) == 0:
		dg.nulls = append(dg.nulls, "every lookup column is NOT NULL")
	case nullsOK:
		dg.nulls = append(dg.nulls, fmt.Sprintf("%s accepts NULL, and the index is NULLS NOT DISTINCT: a NULL lookup is still unique", strings.Join(nullable, ", ")))
	case cover != nil:
		msg := fmt.Sprintf("%s accepts NULL, and a unique index treats NULLs as distinct: two rows with a NULL lookup are not duplicates to it", strings.Join(nullable, ", "))
		if d.Features().Has(dialect.NullsNotDistinct) {
			msg += " (this server has UNIQUE NULLS NOT DISTINCT)"
		}
		dg.nulls = append(dg.nulls, msg)
	default:
		dg.nulls = append(dg.nulls, fmt.Sprintf("%s accepts NULL", strings.Join(nullable, ", ")))
	}

	lock := map[string]string{
		"postgres": "a transaction-scoped advisory lock (pg_advisory_xact_lock)",
		"mysql":    "a row lock in the racefree_locks table",
		"sqlite":   "SQLite's write transaction, which excludes every other writer",
	}[d.Name()]
	lockStrategy := "lock: " + lock + " on (table, lookup values) around SELECT and INSERT"
	if d.Features().Has(dialect.ClientRetries) {
		lockStrategy = "serializable: SELECT and INSERT in a SERIALIZABLE transaction, retried"
	}
	constraint := "constraint: one SELECT; on a miss one INSERT whose conflict on " + func() string {
		if cover != nil {
			return cover.Name
		}
		return ""
	}() + " is a lost race, answered by re-reading the winner's row"
	create := fmt.Sprintf("CREATE UNIQUE INDEX %s_%s_key ON %s (%s)", strings.ReplaceAll(t.Name, ".", "_"), strings.Join(cols, "_"), t.Name, strings.Join(cols, ", "))
	switch {
	case cover != nil && (len(nullable) == 0 || nullsOK):
		dg.safe = true
		dg.strategy = constraint
		dg.verdict = fmt.Sprintf("SAFE: the unique index %s decides every race on (%s). Plain SELECT-then-INSERT code will not create duplicates here, but its losers get a unique-violation error; racefree.GetOrCreate turns a lost race into the winner's row.", cover.Name, strings.Join(cols, ", "))
	case cover != nil:
		dg.strategy = constraint + " when no lookup value is NULL; " + lockStrategy + " when one is"
		dg.verdict = fmt.Sprintf("SAFE ONLY WITHOUT NULLS: %s guards lookups without NULLs; with a NULL in %s, SELECT-then-INSERT code creates duplicates. racefree.GetOrCreate takes the lock strategy for those calls.", cover.Name, strings.Join(nullable, ", "))
	default:
		dg.strategy = lockStrategy
		dg.verdict = fmt.Sprintf("NOT SAFE for plain code: nothing in the database stops two workers from both inserting (%s); a mutex in one process does not help the process beside it. racefree.GetOrCreate stays correct with a lock, one call at a time per key. Faster and safer: %s", strings.Join(cols, ", "), create)
	}
	return dg, nil
}

// sessionFacts reads the session settings that matter to a get-or-create:
// the isolation level, and for SQLite the journal mode and busy timeout.
func sessionFacts(ctx context.Context, db *racefree.DB) ([][2]string, error) {
	q := db.SQL()
	var out [][2]string
	switch db.Dialect().Name() {
	case "postgres":
		var iso string
		if err := q.QueryRowContext(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil {
			return nil, fmt.Errorf("read isolation level: %w", err)
		}
		note := ""
		if iso != "read committed" {
			note = ": a transaction cannot see a row another committed after it began, so racefree asks RunInTx to restart it when it loses a race"
		}
		out = append(out, [2]string{"isolation", iso + note})
	case "mysql":
		var iso string
		err := q.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&iso)
		if err != nil {
			err = q.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&iso)
		}
		if err != nil {
			return nil, fmt.Errorf("read isolation level: %w", err)
		}
		note := ""
		if strings.EqualFold(iso, "REPEATABLE-READ") {
			note = ": inside a transaction a plain re-read after a duplicate-key error sees the old snapshot (\"duplicate, then not found\"); racefree re-reads with LOCK IN SHARE MODE"
		}
		out = append(out, [2]string{"isolation", strings.ToLower(iso) + note})
	case "sqlite":
		var mode string
		var busy int64
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
		out = append(out,
			[2]string{"isolation", "serializable (SQLite has one writer at a time)"},
			[2]string{"journal mode", jm},
			[2]string{"busy timeout", bt})
	}
	return out, nil
}

func sameSet(a, b []string) bool { return len(a) == len(b) && subset(a, b) && subset(b, a) }

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
