package racefree

import (
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/racefree/racefree/dialect"
)

// A hit is one SELECT, so everything racefree does around it is overhead
// measured against a raw SELECT (the target is 0.95 of its speed).
// planCall's work for one call — reading the catalog entry, matching the
// result type, sorting and checking the column names, finding the covering
// index, resolving the strategy, building the SQL — depends only on the
// shape of the call: the table, the result type, the verb, the demanded
// strategy and the sets of lookup and default column names. A plan keeps
// that work, so that a call whose shape was seen before only fetches and
// checks its values.

// plan is prepare's result for one shape of call, minus the values.
type plan struct {
	id      uint64 // unique among the DB's plans (coalescing keys)
	verb    string // the call's verb, with the table: "get or create users"
	t       *tableInfo
	c       *codec
	lcols   []string // lookup columns, sorted
	icols   []string // lcols, then the default (value) columns, then the create-only ones, each sorted
	nset    int      // the default (value) columns in icols
	missing []string // required columns icols lacks (call.missing)
	cols    []dialect.Column
	fams    []int // valueFam of each of icols: its type family and the engine's float flags
	ix      *dialect.UniqueIndex
	strat   Strategy
	sel     string    // the lookup SELECT
	ins     [2]string // the INSERT, without and with ON CONFLICT DO NOTHING
	stat    string    // the adaptive statistics key
}

// planKey narrows the plans a call may use to those of the same table,
// result type, verb, strategy and numbers of lookup and default columns.
// The column names are not in the key: hashing them would mean iterating
// both maps on every call, which costs more than fill's look-ups by name,
// and fill's look-ups prove the names equal anyway (with the counts equal,
// every planned name found means the same sets). So a key holds the plans
// of every shape with those counts, tried in turn; usually there is one.
type planKey struct {
	table      string
	rt         reflect.Type
	verb       string
	strat      Strategy
	nl, nd, nc int // lookup, default (or value) and create-only columns
}

// maxPlans bounds a DB's plans: shapes come from the program's code, so a
// program that makes more (column sets built at run time) still works,
// on the slow path. maxPlansPerKey bounds the plans fill tries per call.
const (
	maxPlans       = 4096
	maxPlansPerKey = 8
)

// planCache is copy-on-write: a hit reads a map with no lock and no
// boxing of the key, and new shapes, rare after warm-up, copy it.
type planCache struct {
	m  atomic.Pointer[planMap]
	mu sync.Mutex // serializes writers
}

type planMap struct {
	byKey map[planKey][]*plan
	n     int // plans in byKey
}

func makePlanKey(table string, rt reflect.Type, verb string, strat Strategy, lookup, defaults, createOnly Values) planKey {
	return planKey{table: table, rt: rt, verb: verb, strat: strat, nl: len(lookup), nd: len(defaults), nc: len(createOnly)}
}

// load returns the plans that may fit a call with key k.
func (pc *planCache) load(k planKey) []*plan {
	if m := pc.m.Load(); m != nil {
		return m.byKey[k]
	}
	return nil
}

func (pc *planCache) store(k planKey, p *plan) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	old := pc.m.Load()
	if old == nil {
		old = &planMap{}
	}
	if old.n >= maxPlans || len(old.byKey[k]) >= maxPlansPerKey {
		return
	}
	// Concurrent first calls of one shape all take the slow path and all
	// store, and so does every call of a planned shape whose defaults hold
	// a NULL (fill declines it): keep one plan per shape, or the copies
	// would use up the key's room and push other shapes onto the slow path.
	for _, q := range old.byKey[k] {
		if q.sameShape(p) {
			return
		}
	}
	m := &planMap{byKey: make(map[planKey][]*plan, len(old.byKey)+1), n: old.n + 1}
	for k, v := range old.byKey {
		m.byKey[k] = v
	}
	// A new slice, never an append into the old one's spare room: readers
	// may hold the old slice.
	m.byKey[k] = append(append(make([]*plan, 0, len(old.byKey[k])+1), old.byKey[k]...), p)
	pc.m.Store(m)
}

// sameShape reports whether p and q plan the same columns, lookup and
// defaults (the rest of a shape is in their key).
func (p *plan) sameShape(q *plan) bool {
	if len(p.lcols) != len(q.lcols) || len(p.icols) != len(q.icols) || p.nset != q.nset {
		return false
	}
	for i := range p.icols {
		if p.icols[i] != q.icols[i] {
			return false
		}
	}
	return true
}

// forget drops every plan, after the catalog they were built from was
// dropped (DB.ForgetSchema).
func (pc *planCache) forget() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.m.Store(nil)
}

// newPlan records what planCall worked out for c, for calls of the same
// shape. Calls with a NULL lookup value are not planned: NULL changes the
// SQL (IS NULL) and may change the strategy.
func newPlan(c *call) *plan {
	p := &plan{id: c.db.planIDs.Add(1), verb: c.verb, t: c.t, c: c.codec, lcols: c.lcols, icols: c.icols, nset: c.nset,
		missing: c.missing, ix: c.ix, strat: c.strat, stat: c.statKey()}
	p.cols = make([]dialect.Column, len(c.icols))
	p.fams = make([]int, len(c.icols))
	for i, name := range c.icols {
		p.cols[i], _ = c.t.Column(name)
		p.fams[i] = c.t.valueFam(name)
	}
	p.sel, _ = c.buildSelectSQL("")
	p.ins[0] = c.buildInsertSQL(false)
	p.ins[1] = c.buildInsertSQL(true)
	return p
}

// fill makes the call of one shape from its plan: it fetches each value by
// the plan's column names, which also proves the call names the same
// columns (the counts are in the key), and checks it as planCall would.
// ok is false when the plan does not fit: a name is missing (the plan is
// of another shape with the same counts), or a value is NULL (planned
// calls have no NULL lookups) or bad (planCallSlow names every bad value
// of the call at once).
func (p *plan) fill(h handle, opts Options, lookup, defaults Values) (c *call, ok bool, err error) {
	var vals []any
	lazy := false
	if len(p.icols) <= len(callVals{}.buf) {
		// The common small call: the call and its values in one allocation.
		cv := &callVals{}
		c, vals = &cv.call, cv.buf[:len(p.icols)]
	} else {
		c, vals = &call{}, make([]any, len(p.icols))
	}
	for i, name := range p.icols {
		var v any
		var found bool
		switch {
		case i < len(p.lcols):
			v, found = lookup[name]
		case i < len(p.lcols)+p.nset:
			v, found = defaults[name]
		default:
			v, found = opts.CreateOnly[name]
		}
		if !found {
			return nil, false, nil
		}
		if _, ok := v.(Lazy); ok && i >= len(p.lcols) {
			lazy = true
			vals[i] = v
			continue
		}
		if v, err = normalizeValue(p.cols[i], p.fams[i], v); err != nil || v == nil {
			// A bad value (the slow path names every one) or a NULL
			// (planned calls have none).
			return nil, false, nil
		}
		vals[i] = v
	}
	*c = call{verb: p.verb, h: h, db: h.db, d: h.db.d, t: p.t, opts: opts, p: p,
		lcols: p.lcols, lvals: vals[:len(p.lcols):len(p.lcols)], icols: p.icols, ivals: vals,
		nset: p.nset, missing: p.missing, lazy: lazy, codec: p.c, ix: p.ix, strat: p.strat}
	return c, true, nil
}

// callVals is a call with room for the values of a small call.
type callVals struct {
	call call
	buf  [4]any
}

// sameCols reports whether a and b are the same slice: a call copied with
// other insert columns (UpdateOrCreate's withValues) must not use the
// plan's INSERT.
func sameCols(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
