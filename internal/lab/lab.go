// Package lab reproduces the classic database races — get-or-create,
// bank transfer, read-increment-write counter, many-to-many links — with
// every fix people have proposed for them, and measures what each fix does
// under real concurrency: goroutines inside several OS processes hitting
// one database at the same moment.
//
// The unsafe strategies are written the way people write them, on purpose:
// the lab exists to show them failing. After a run the lab reads the
// database and checks the scenario's invariant (no duplicate rows, no money
// created or lost, no increment lost), so a strategy is judged by what it
// left behind, not by what it claims.
//
// The racefree command drives this package: it creates the tables (Setup),
// starts the worker processes (Spawn), each of which runs Work, merges
// their Parts and checks the invariant (Check).
package lab

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
)

// Scenarios in the order the command lists them.
var Scenarios = []string{"goc", "transfer", "counter", "m2m"}

// Strategies in the order the command lists them.
var Strategies = []string{"naive", "mutex", "tablelock", "advisory", "namedlock", "catch", "createfirst", "forupdate", "serializable", "racefree"}

// Spec describes one strategy's run: what every worker process needs to
// know to take part in it.
type Spec struct {
	Scenario string
	Strategy string
	// Table is the (unquoted) name of the scenario's table, created by Setup.
	Table string
	// Keys is the number of distinct keys: lookup values (goc), accounts
	// (transfer), counters (counter), tags per post (m2m).
	Keys int
	// Unique puts a unique index on the lookup columns even for strategies
	// that do not rely on one (goc, m2m), so that their races surface as
	// errors instead of duplicate rows.
	Unique bool
	// Rotate renews the goc and m2m key set this often, so that the storm
	// on fresh keys repeats during the run instead of happening once at the
	// start; 0 keeps one key set.
	Rotate time.Duration
}

// Defaults per scenario.
const (
	DefaultRotate  = 100 * time.Millisecond
	InitialBalance = 1000 // per account, transfer scenario
	maxAmount      = 100  // transfers move 1..maxAmount
	serialAttempts = 20   // the hand-written serializable retry loop
)

// DefaultKeys is the default number of distinct keys: few enough that
// every scenario races hard, many enough that transfers go both ways
// between many pairs.
const DefaultKeys = 10

// Describe says in a few words what a strategy does in a scenario, for
// tables and reports.
func Describe(scenario, strategy string) string {
	d := descriptions[scenario+"/"+strategy]
	if d == "" {
		d = descriptions[strategy]
	}
	return d
}

var descriptions = map[string]string{
	"naive":                 "read, then write what was computed",
	"mutex":                 "the naive code behind a process-wide mutex",
	"tablelock":             "lock the whole table around read and write",
	"advisory":              "named session lock (pg_advisory_lock, GET_LOCK) around read and write",
	"namedlock":             "racefree.LockNamed in RunInTx around read and write",
	"catch":                 "unique index; on a violation, read again",
	"createfirst":           "unique index; INSERT first, read on a violation",
	"forupdate":             "SELECT … FOR UPDATE in a transaction, then write",
	"serializable":          "SERIALIZABLE transaction, retried up to 20 times",
	"goc/naive":             "SELECT, then INSERT if missing",
	"goc/racefree":          "racefree.GetOrCreate",
	"m2m/naive":             "SELECT the link, then INSERT if missing",
	"m2m/racefree":          "racefree.Link",
	"transfer/naive":        "read both balances, write new balances",
	"transfer/forupdate":    "FOR UPDATE in argument order, then write",
	"transfer/racefree":     "RunOnce (idempotency key) around Transfer: rows locked in key order, floor held",
	"counter/naive":         "read the count, write count+1",
	"counter/racefree":      "one atomic UPDATE … SET n = n + 1",
	"counter/serializable":  "SERIALIZABLE read-increment-write, retried up to 20 times",
	"transfer/serializable": "SERIALIZABLE transfer, retried up to 20 times",
}

// CheckSupported validates a scenario and strategy against an engine, before any
// table is created: the error names the problem in one line.
func CheckSupported(d dialect.Dialect, scenario, strategy string) error {
	if !slices.Contains(Scenarios, scenario) {
		return fmt.Errorf("unknown scenario %q (known: %s)", scenario, strings.Join(Scenarios, ", "))
	}
	if !slices.Contains(Strategies, strategy) {
		return fmt.Errorf("unknown strategy %q (known: %s)", strategy, strings.Join(Strategies, ", "))
	}
	if opFor(scenario, strategy) == nil {
		return fmt.Errorf("strategy %s does not apply to scenario %s: it guards an INSERT, and %s inserts nothing", strategy, scenario, scenario)
	}
	if d == nil {
		return nil
	}
	f := d.Features()
	switch strategy {
	case "forupdate":
		if !f.Has(dialect.ForUpdate) {
			return fmt.Errorf("strategy forupdate cannot run on %s: it has no SELECT … FOR UPDATE (its write transaction already excludes every other writer: see tablelock)", d.Name())
		}
	case "tablelock":
		if !f.Has(dialect.TableLocks) && !f.Has(dialect.SingleWriter) {
			return fmt.Errorf("strategy tablelock cannot run on %s: it has no table locks", d.Name())
		}
	case "advisory":
		if d.Name() != "postgres" && d.Name() != "mysql" {
			return fmt.Errorf("strategy advisory cannot run on %s: it has no named session locks (its write transaction already excludes every other writer: see namedlock)", d.Name())
		}
	}
	return nil
}
