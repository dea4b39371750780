package racefree

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/racefree/racefree/dialect"
)

// The get-or-create family (GetOrCreate, CreateOrGet, UpdateOrCreate,
// UpdateOrCreateFunc, GetOrCreateMany, Link, Unlink) shares one engine:
//
//   - call.go: a call, planned — its columns and values checked against the
//     catalog, every problem named at once, and its strategy resolved;
//   - call_plan.go: the plans cached per shape of call, so that a call whose
//     shape was seen before only fetches and checks its values;
//   - call_sql.go: the text of its statements (golden files per dialect in
//     testdata/sql);
//   - call_run.go: running it — read, insert, and the rule for a unique
//     violation (createOr); the strategies' transactions;
//   - call_upsert.go: UpdateOrCreate's writes;
//   - call_stmt.go: prepared statements on the pool;
//   - batch*.go: GetOrCreateMany's batches.
//
// The dialect answers every question whose answer differs by engine
// (dialect.Features and the optional interfaces of package dialect).

// call is one get-or-create family call, planned: validated columns and
// values, the strategy, and the statements' pieces.
type call struct {
	verb string
	h    handle
	db   *DB
	d    dialect.Dialect
	t    *tableInfo
	opts Options
	// lcols are the lookup columns, sorted so that the SQL of one lookup
	// shape is always the same text (statement caches) and lock keys agree
	// across processes; lvals their normalized values.
	lcols []string
	lvals []any
	// icols/ivals are what an INSERT writes: the lookup, then the defaults
	// (UpdateOrCreate: the values, the first nset of them), then
	// UpdateOrCreate's create-only values, each group sorted.
	icols []string
	ivals []any
	nset  int
	// missing are the NOT NULL columns without a default that icols lack:
	// an INSERT cannot run, though a hit or an UPDATE can.
	missing []string
	lazy    bool // some ivals are Lazy, not resolved yet
	codec   *codec
	ix      *dialect.UniqueIndex // the unique index covering lcols, or nil
	null    bool                 // a lookup value is NULL
	strat   Strategy             // resolved: never StrategyAuto
	p       *plan                // the plan the call was made from, or nil (see plan.go)
	native  nativeRow            // the statement nativeQueryRow returned last
}

// planCall validates everything and resolves the strategy. It sends no
// statement except, once per table and DB, the catalog reads.
func planCall[T any](ctx context.Context, ex Executor, verb, table string, lookup, defaults Values, opts Options) (*call, error) {
	h, err := handleOf(ex)
	if err != nil {
		return nil, fmt.Errorf("racefree: %s: %w", verb, err)
	}
	if len(lookup) == 0 {
		return nil, inputError(verb, "empty lookup: at least one column must identify the row")
	}
	if len(opts.CreateOnly) > 0 && verb != verbUpdate && verb != verbUpdateFunc {
		return nil, inputError(verb, "Options.CreateOnly applies to UpdateOrCreate and UpdateOrCreateFunc only (the defaults here are already used only to create)")
	}
	key := makePlanKey(table, reflect.TypeFor[T](), verb, opts.Strategy, lookup, defaults, opts.CreateOnly)
	for _, p := range h.db.plans.load(key) {
		if o, ok, err := p.fill(h, opts, lookup, defaults); ok {
			return o, err
		}
	}
	c, err := planCallSlow[T](ctx, h, verb, table, lookup, defaults, opts)
	if err == nil && !c.null && verb != verbUnlink {
		c.p = newPlan(c)
		h.db.plans.store(key, c.p)
	}
	return c, err
}

// planCallSlow is prepare for a shape of call not planned yet, and for bad
// input, which it reports whole: every unknown column, every bad value.
func planCallSlow[T any](ctx context.Context, h handle, verb, table string, lookup, defaults Values, opts Options) (*call, error) {
	t, err := h.db.table(ctx, h.q, verb, table)
	if err != nil {
		return nil, err
	}
	c := &call{verb: verb + " " + table, h: h, db: h.db, d: h.db.d, t: t, opts: opts}
	if c.codec, err = codecFor[T](c.verb, h.db, t); err != nil {
		return nil, err
	}
	var bad badInput
	lk, df := roleValues{roleLookup, lookup}, roleValues{c.defaultsRole(), defaults}
	c.lcols, c.lvals = c.columns(&bad, lk)
	dcols, dvals := c.columns(&bad, df, lk)
	ccols, cvals := c.columns(&bad, roleValues{roleCreateOnly, opts.CreateOnly}, lk, df)
	if err := bad.err(c.verb); err != nil {
		return nil, err
	}
	c.icols = slices.Concat(c.lcols, dcols, ccols)
	c.ivals = slices.Concat(c.lvals, dvals, cvals)
	c.nset = len(dcols)
	c.lazy = hasLazy(c.ivals)
	for _, v := range c.lvals {
		c.null = c.null || v == nil
	}
	if verb == verbUnlink {
		return c, nil // a DELETE: no insert to check, no strategy
	}
	c.missing = missingRequired(t.Table, c.icols)
	c.ix = coveringIndex(t.Table, c.lcols)
	if c.strat, err = c.resolve(opts.Strategy); err != nil {
		return nil, err
	}
	return c, nil
}

// Verbs that change what prepare checks.
const (
	verbUnlink     = "unlink"
	verbUpdate     = "update or create"
	verbUpdateFunc = "update or create func"
)

// missingRequired lists the NOT NULL columns of t without a default that
// cols lacks: an INSERT of cols would fail.
func missingRequired(t *dialect.Table, cols []string) []string {
	var missing []string
	for _, col := range t.Columns {
		if !col.Nullable && !col.HasDefault && !slices.Contains(cols, col.Name) {
			missing = append(missing, col.Name)
		}
	}
	return missing
}

// checkInsert refuses an INSERT that would leave out a NOT NULL column
// without a default: the engine would refuse it too, but the message
// would not name every column, nor say why. It is checked only where an
// INSERT is about to run: a hit or an update needs no such column.
func (c *call) checkInsert() error {
	if len(c.missing) == 0 {
		return nil
	}
	what := "the lookup nor the defaults"
	if c.defaultsRole() == roleSet {
		what = "the lookup, the values nor Options.CreateOnly"
	}
	return inputError(c.verb, "the row does not exist and cannot be created: NOT NULL column%s %s without a default %s in neither %s",
		plural(len(c.missing)), quoteList(c.missing), isAre(len(c.missing)), what)
}

// beforeWrite is what every statement that may insert the call's row
// needs first: its Lazy values computed.
func (c *call) beforeWrite(ctx context.Context) error {
	if !c.lazy {
		return nil
	}
	if err := c.resolveLazy(ctx, c.icols, c.ivals); err != nil {
		return err
	}
	c.lazy = false
	return nil
}

// beforeUpdate is what an UPDATE of the call's values needs first: the
// Lazy values among them computed, and only those (a create-only Lazy
// value is never computed for a row that exists).
func (c *call) beforeUpdate(ctx context.Context) error {
	if !c.lazy {
		return nil
	}
	if err := c.resolveLazy(ctx, c.setCols(), c.setVals()); err != nil {
		return err
	}
	c.lazy = hasLazy(c.ivals)
	return nil
}

// Roles of the values a call passes, for columns and its messages.
const (
	roleLookup     = "lookup"
	roleDefault    = "defaults"
	roleSet        = "values"
	roleCreateOnly = "Options.CreateOnly"
)

// roleValues are values a call passes, and what they are for.
type roleValues struct {
	role string
	vals Values
}

// defaultsRole is what the call's second Values are: UpdateOrCreate's
// values, or defaults.
func (c *call) defaultsRole() string {
	if strings.HasPrefix(c.verb, verbUpdate) {
		return roleSet
	}
	return roleDefault
}

// columns checks and normalizes rv's values, sorted by column name,
// recording every problem in bad rather than stopping at the first. A
// column also in one of others is refused.
func (c *call) columns(bad *badInput, rv roleValues, others ...roleValues) ([]string, []any) {
	vals, role := rv.vals, rv.role
	if len(vals) == 0 {
		return nil, nil
	}
	cols := make([]string, 0, len(vals))
	for name := range vals {
		cols = append(cols, name)
	}
	slices.Sort(cols)
	out := make([]any, len(cols))
	for i, name := range cols {
		col, ok := c.t.Column(name)
		if !ok {
			if _, err := c.d.QuoteIdent(name); err != nil {
				bad.add("%s", strings.TrimPrefix(err.Error(), "racefree: "))
			} else {
				bad.unknown = append(bad.unknown, name)
			}
			continue
		}
		if _, ok := c.t.cols[name]; !ok {
			bad.add("column %q cannot be quoted by the %s dialect", name, c.d.Name())
			continue
		}
		for _, other := range others {
			if _, dup := other.vals[name]; dup {
				bad.add("column %q is in both the %s and the %s", name, other.role, role)
			}
		}
		v := vals[name]
		if _, lazy := v.(Lazy); lazy {
			if role == roleLookup {
				bad.add("column %q: a lookup value cannot be Lazy (it is needed to find the row)", name)
			}
			out[i] = v
			continue
		}
		v, err := normalizeValue(col, c.t.valueFam(name), v)
		if err != nil {
			bad.add("%s", strings.TrimPrefix(err.Error(), "racefree: "))
			continue
		}
		if v == nil && !col.Nullable {
			bad.add("column %q is NOT NULL and the value is nil", name)
		}
		out[i] = v
	}
	return cols, out
}

// badInput collects what is wrong with a call's input, so that one error
// names every problem.
type badInput struct {
	unknown  []string // columns the table does not have
	problems []string
}

func (b *badInput) add(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// err is the input error naming every problem, or nil.
func (b *badInput) err(verb string) error {
	if len(b.unknown) == 0 && len(b.problems) == 0 {
		return nil
	}
	var msgs []string
	if len(b.unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("no column%s %s in the table", plural(len(b.unknown)), quoteList(b.unknown)))
	}
	msgs = append(msgs, b.problems...)
	return inputError(verb, "%s", strings.Join(msgs, "; "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// quoteList writes names as "a", "b", "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// qtable is the table's name, quoted when the catalog was read.
func (c *call) qtable() string { return c.t.quoted }

// statKey names the adaptive statistics of this lookup shape.
func (c *call) statKey() string {
	if c.p != nil {
		return c.p.stat
	}
	return c.t.Name + "\x00" + strings.Join(c.lcols, "\x00")
}

// lockName is the named lock of this lookup: table, columns and values,
// the values typed so that 1 and "1" differ. Hashed, it fits every
// engine's limit on lock names.
func (c *call) lockName() string {
	var b strings.Builder
	b.WriteString(c.t.Name)
	for i, col := range c.lcols {
		fmt.Fprintf(&b, "\x00%s\x00", col)
		switch v := c.lvals[i].(type) {
		case nil:
			b.WriteString("NULL")
		case []byte:
			fmt.Fprintf(&b, "s%q", v)
		case string:
			fmt.Fprintf(&b, "s%q", v)
		case time.Time:
			fmt.Fprintf(&b, "t%d", v.UnixNano())
		default:
			fmt.Fprintf(&b, "%T:%v", v, v)
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "racefree/goc/" + hex.EncodeToString(sum[:16])
}

// setCols are the columns an update writes: the values (not the lookup,
// nor the create-only values), and setVals their values.
func (c *call) setCols() []string { return c.icols[len(c.lcols) : len(c.lcols)+c.nset] }

func (c *call) setVals() []any { return c.ivals[len(c.lcols) : len(c.lcols)+c.nset] }

// withValues returns a copy of the call whose values are vals (UpdateOrCreateFunc's
// update result), validated as planCall validates, keeping the lookup and
// the create-only values.
func (c *call) withValues(vals Values) (*call, error) {
	var bad badInput
	create := c.icols[len(c.lcols)+c.nset:]
	createVals := make(Values, len(create))
	for i, col := range create {
		createVals[col] = c.ivals[len(c.lcols)+c.nset+i]
	}
	cols, norm := c.columns(&bad, roleValues{roleSet, vals}, roleValues{roleLookup, c.lookupValues()}, roleValues{roleCreateOnly, createVals})
	if err := bad.err(c.verb); err != nil {
		return nil, err
	}
	w := *c
	w.icols = slices.Concat(c.lcols, cols, create)
	w.ivals = slices.Concat(c.lvals, norm, c.ivals[len(c.lcols)+c.nset:])
	w.nset = len(cols)
	w.missing = missingRequired(c.t.Table, w.icols)
	w.lazy = hasLazy(w.ivals)
	w.p = nil // the plan's statements have other columns
	return &w, nil
}

func (c *call) lookupValues() Values {
	v := make(Values, len(c.lcols))
	for i, col := range c.lcols {
		v[col] = c.lvals[i]
	}
	return v
}
