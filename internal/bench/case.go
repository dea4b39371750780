package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/racefree/racefree"
)

// ErrUnsupported is returned (wrapped) by a case's Ops when the engine
// lacks what one of its sides needs. The run then skips the case and says
// why, instead of measuring something else under the case's name.
var ErrUnsupported = errors.New("not supported on this engine")

// Side is one half of a case: the raw statements or racefree's operation.
type Side int

// The two sides of every case.
const (
	Raw Side = iota
	Racefree
)

// String returns "raw" or "racefree", the names the worker flag and the
// JSON use.
func (s Side) String() string {
	if s == Racefree {
		return "racefree"
	}
	return "raw"
}

// ParseSide is the inverse of Side.String.
func ParseSide(s string) (Side, error) {
	switch s {
	case "raw":
		return Raw, nil
	case "racefree":
		return Racefree, nil
	}
	return 0, fmt.Errorf("unknown side %q (raw or racefree)", s)
}

// Worker is the state of one goroutine running a side. It is not shared:
// each goroutine has its own for the whole run.
type Worker struct {
	// ID numbers the goroutines of one process from 0.
	ID int
	// Rand is this goroutine's random source.
	Rand *rand.Rand
}

// Op is one call of a side: one get-or-create, one transfer, one batch.
// An error counts as a failed call; the bench never retries it.
type Op func(ctx context.Context, w *Worker) error

// Pair is the two sides of a case, ready to call from many goroutines at
// once.
type Pair struct {
	Raw, Racefree Op
	// RawSQL is the raw side's statements as this engine gets them, for
	// the report.
	RawSQL string
}

// Op returns the side's operation.
func (p Pair) Op(s Side) Op {
	if s == Racefree {
		return p.Racefree
	}
	return p.Raw
}

// Env is what a case is set up and run with. The same Env (apart from DB)
// is rebuilt in every worker process from its flags.
type Env struct {
	DB *racefree.DB
	// Table is the case's own table, a fresh unquoted name; the runner
	// drops it (DROP TABLE IF EXISTS) after the run, whether Setup
	// created it or not.
	Table string
	// Batch is the number of items in one call of the batch case.
	Batch int
	// Accounts is the number of accounts the transfer case moves money
	// between.
	Accounts int
	// Run names one launch of the case's sides: the same in every process
	// started together, different for every launch. The storm case keys
	// its hot keys by it, so that processes started together storm the
	// same keys and a later launch never finds them made.
	Run string
}

// Defaults for Env.
const (
	DefaultBatch    = 100
	DefaultAccounts = 100
)

// Case is one racefree operation paired with its raw counterpart.
type Case struct {
	// Name identifies the case on the command line and in the JSON:
	// lower-case, stable.
	Name string
	// Title says what is measured, in a few words.
	Title string
	// Racefree and Raw say what each side does, in a few words; the
	// statements of the raw side are in Pair.RawSQL.
	Racefree, Raw string
	// Goroutines is how many goroutines call each side at once while its
	// ratio is measured: 1 for the cost of one call, more for a case that
	// is about contention (the hot-key storm).
	Goroutines int
	// Setup creates env.Table and fills it. It runs once, in the process
	// that runs the bench, before any Ops.
	Setup func(ctx context.Context, env Env) error
	// Ops returns the two sides. It runs once in every process that
	// calls them, after Setup; state shared by the goroutines of one
	// process (counters, prepared statements) lives in its closures.
	Ops func(ctx context.Context, env Env) (Pair, error)
}

var (
	registryMu sync.Mutex // guards registry; cases register from init functions
	registry   []*Case
)

// Register adds a case to the registry. It panics on a malformed case or a
// duplicate name: both are programming errors caught by any test run.
func Register(c *Case) {
	if c.Name == "" || c.Title == "" || c.Setup == nil || c.Ops == nil || c.Goroutines < 1 {
		panic(fmt.Sprintf("bench: Register: case %q lacks a name, title, Setup, Ops or goroutines", c.Name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, o := range registry {
		if o.Name == c.Name {
			panic("bench: Register: duplicate case " + c.Name)
		}
	}
	registry = append(registry, c)
}

// caseOrder is the order the built-in cases are reported in; cases
// registered later follow in the order of their names.
var caseOrder = []string{"hit", "miss", "miss-insert-first", "storm", "batch", "transfer", "transfer-primitive", "transfer-hot", "transfer-spread", "lock"}

// Cases returns every registered case, in report order.
func Cases() []*Case {
	registryMu.Lock()
	out := slices.Clone(registry)
	registryMu.Unlock()
	rank := func(c *Case) int {
		if i := slices.Index(caseOrder, c.Name); i >= 0 {
			return i
		}
		return len(caseOrder)
	}
	slices.SortStableFunc(out, func(a, b *Case) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

// Lookup returns the case called name.
func Lookup(name string) (*Case, bool) {
	for _, c := range Cases() {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Names returns the names of every registered case, in report order.
func Names() []string {
	var out []string
	for _, c := range Cases() {
		out = append(out, c.Name)
	}
	return out
}
