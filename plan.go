package racefree

import (
	"hash/maphash"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/racefree/racefree/dialect"
)

// A hit is one SELECT, so everything racefree does around it is overhead
// measured against a raw SELECT (the target is 0.95 of its speed).
// prepare's work for one call — reading the catalog entry, matching the
// result type, sorting and checking the column names, finding the covering
// index, resolving the strategy, building the SQL — depends only on the
// shape of the call: the table, the result type, the verb, the demanded
// strategy and the sets of lookup and default column names. A plan keeps
// that work, so that a call whose shape was seen before only fetches and
// checks its values.

// plan is prepare's result for one shape of call, minus the values.
type plan struct {
	verb  string // the op's verb, with the table: "get or create users"
	t     *dialect.Table
	c     *codec
	lcols []string // lookup columns, sorted
	icols []string // lcols, then the default columns, sorted
	cols  []dialect.Column
	fams  []int // typeFamily of each of icols
	ix    *dialect.UniqueIndex
	strat Strategy
	sel   string    // the lookup SELECT
	ins   [2]string // the INSERT, without and with ON CONFLICT DO NOTHING
	stat  string    // the adaptive statistics key
}

// planKey identifies a shape. The column sets enter as order-independent
// hashes; a plan found under a key is still checked name by name against
// the call's maps (see fill), so a collision costs the slow path, never a
// wrong plan.
type planKey struct {
	table    string
	rt       reflect.Type
	verb     string
	strat    Strategy
	lookup   uint64
	defaults uint64
	nl, nd   int
}

// maxPlans bounds a DB's plans: shapes come from the program's code, so a
// program that makes more (column sets built at run time) still works,
// on the slow path.
const maxPlans = 4096

// planCache is copy-on-write: a hit reads a map with no lock and no
// boxing of the key, and new shapes, rare after warm-up, copy it.
type planCache struct {
	m  atomic.Pointer[map[planKey]*plan]
	mu sync.Mutex // serializes writers
}

var planSeed = maphash.MakeSeed()

// setHash combines the hashes of the names in vals so that the order the
// map yields them in does not matter.
func setHash(vals Values) uint64 {
	var sum uint64
	for name := range vals {
		sum += maphash.String(planSeed, name)
	}
	return sum
}

func makePlanKey(table string, rt reflect.Type, verb string, strat Strategy, lookup, defaults Values) planKey {
	return planKey{table: table, rt: rt, verb: verb, strat: strat,
		lookup: setHash(lookup), defaults: setHash(defaults), nl: len(lookup), nd: len(defaults)}
}

func (pc *planCache) load(k planKey) *plan {
	if m := pc.m.Load(); m != nil {
		return (*m)[k]
	}
	return nil
}

func (pc *planCache) store(k planKey, p *plan) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	old := pc.m.Load()
	var m map[planKey]*plan
	if old != nil {
		if len(*old) >= maxPlans {
			return
		}
		m = make(map[planKey]*plan, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	} else {
		m = make(map[planKey]*plan, 8)
	}
	m[k] = p
	pc.m.Store(&m)
}

// forget drops every plan, after the catalog they were built from was
// dropped (DB.ForgetSchema).
func (pc *planCache) forget() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.m.Store(nil)
}

// planOf records what prepare worked out for o, for calls of the same
// shape. Calls with a NULL lookup value are not planned: NULL changes the
// SQL (IS NULL) and may change the strategy.
func planOf(o *op) *plan {
	p := &plan{verb: o.verb, t: o.t, c: o.c, lcols: o.lcols, icols: o.icols,
		ix: o.ix, strat: o.strat, stat: o.statKey()}
	p.cols = make([]dialect.Column, len(o.icols))
	p.fams = make([]int, len(o.icols))
	for i, name := range o.icols {
		p.cols[i], _ = o.t.Column(name)
		p.fams[i] = familyOf(p.cols[i].Type)
	}
	p.sel, _ = o.buildSelectSQL("")
	p.ins[0] = o.buildInsertSQL(false)
	p.ins[1] = o.buildInsertSQL(true)
	return p
}

// fill makes the op of one call from its plan: it fetches each value by
// the plan's column names, which also proves the call names the same
// columns (the counts are in the key), and checks it as prepare would.
// ok is false when the call must take the slow path instead: a name is
// missing (a hash collision) or a value is NULL.
func (p *plan) fill(h handle, opts Options, lookup, defaults Values) (o *op, ok bool, err error) {
	var vals []any
	if len(p.icols) <= len(opVals{}.buf) {
		// The common small call: the op and its values in one allocation.
		ov := &opVals{}
		o, vals = &ov.op, ov.buf[:len(p.icols)]
	} else {
		o, vals = &op{}, make([]any, len(p.icols))
	}
	for i, name := range p.icols {
		var v any
		var found bool
		if i < len(p.lcols) {
			v, found = lookup[name]
		} else {
			v, found = defaults[name]
		}
		if !found {
			return nil, false, nil
		}
		if v, err = normalizeFam(p.verb, p.cols[i], p.fams[i], v); err != nil {
			return nil, true, err
		}
		if v == nil {
			return nil, false, nil
		}
		vals[i] = v
	}
	*o = op{verb: p.verb, h: h, db: h.db, d: h.db.d, t: p.t, opts: opts, p: p,
		lcols: p.lcols, lvals: vals[:len(p.lcols):len(p.lcols)], icols: p.icols, ivals: vals,
		c: p.c, ix: p.ix, strat: p.strat}
	return o, true, nil
}

// opVals is an op with room for the values of a small call.
type opVals struct {
	op  op
	buf [4]any
}

// sameCols reports whether a and b are the same slice: an op copied with
// other insert columns (UpdateOrCreate's withValues) must not use the
// plan's INSERT.
func sameCols(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
