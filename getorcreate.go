package racefree

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/racefree/racefree/dialect"
)

// GetOrCreate returns the row of table that matches lookup, creating it from
// lookup and defaults if there is none. created is true only for the one
// caller whose INSERT made the row, however many goroutines, processes or
// machines ask for the same lookup at once; a caller who lost the race gets
// the winner's row and no error.
//
// T is a struct whose exported fields carry `db:"column"` tags (the columns
// read back), or Values for the whole row. lookup and defaults map column
// names to values; every name must be a column of table, and no name may be
// in both. Bad input returns an error matching ErrInvalidInput before
// anything is sent.
//
// GetOrCreate reads first: a hit is one SELECT. On a miss, the strategy
// (see Strategy and Options) decides who creates the row. With the
// constraint strategy a miss is one more statement (INSERT … ON CONFLICT
// DO NOTHING RETURNING on PostgreSQL and SQLite, INSERT … RETURNING on
// MariaDB), and a lost race one re-read, chosen by the isolation level:
// plain outside a transaction and at READ COMMITTED; locking (LOCK IN SHARE
// MODE) in a MySQL/MariaDB transaction at REPEATABLE READ, whose snapshot
// cannot see the winner; and in a PostgreSQL transaction at REPEATABLE READ
// or SERIALIZABLE, an error matching ErrSerialization, which RunInTx turns
// into a restart of the whole transaction. If the winner's row is deleted
// before the re-read, GetOrCreate tries again, up to a bound.
//
// A unique violation of another unique index than the lookup's is
// returned as it is (it matches ErrUniqueViolation): the row conflicts with
// a different row, and no retry can fix that.
//
// ex may be a *DB, a *Conn or a *Tx. On a *Tx, GetOrCreate never commits or
// rolls back; on PostgreSQL it wraps its INSERT in a savepoint so that a
// failure leaves the transaction usable.
func GetOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, defaults Values, opts Options) (row T, created bool, err error) {
	o, err := prepare[T](ctx, ex, "get or create", table, lookup, defaults, opts)
	if err != nil {
		return row, false, err
	}
	insertFirst := false
	if opts.Adaptive {
		insertFirst = o.db.hitStat(o.statKey()).ratio() < insertFirstBelow
	}
	if !opts.Coalesce {
		return run[T](ctx, o, insertFirst)
	}
	return coalesce(ctx, o, "get-or-create", func() (T, bool, error) { return run[T](ctx, o, insertFirst) })
}

// op is one get-or-create family call, planned: validated columns and
// values, the strategy, and the statements' pieces.
type op struct {
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
	c       *codec
	ix      *dialect.UniqueIndex // the unique index covering lcols, or nil
	null    bool                 // a lookup value is NULL
	strat   Strategy             // resolved: never StrategyAuto
	p       *plan                // the plan o was made from, or nil (see plan.go)
}

// prepare validates everything and resolves the strategy. It sends no
// statement except, once per table and DB, the catalog reads.
func prepare[T any](ctx context.Context, ex Executor, verb, table string, lookup, defaults Values, opts Options) (*op, error) {
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
	o, err := prepareSlow[T](ctx, h, verb, table, lookup, defaults, opts)
	if err == nil && !o.null && verb != verbUnlink {
		h.db.plans.store(key, planOf(o))
	}
	return o, err
}

// prepareSlow is prepare for a shape of call not planned yet, and for bad
// input, which it reports whole: every unknown column, every bad value.
func prepareSlow[T any](ctx context.Context, h handle, verb, table string, lookup, defaults Values, opts Options) (*op, error) {
	t, err := h.db.table(ctx, h.q, verb, table)
	if err != nil {
		return nil, err
	}
	o := &op{verb: verb + " " + table, h: h, db: h.db, d: h.db.d, t: t, opts: opts}
	if o.c, err = codecFor[T](o.verb, h.db, t); err != nil {
		return nil, err
	}
	var bad badInput
	lk, df := roleValues{roleLookup, lookup}, roleValues{o.defaultsRole(), defaults}
	o.lcols, o.lvals = o.columns(&bad, lk)
	dcols, dvals := o.columns(&bad, df, lk)
	ccols, cvals := o.columns(&bad, roleValues{roleCreateOnly, opts.CreateOnly}, lk, df)
	if err := bad.err(o.verb); err != nil {
		return nil, err
	}
	o.icols = slices.Concat(o.lcols, dcols, ccols)
	o.ivals = slices.Concat(o.lvals, dvals, cvals)
	o.nset = len(dcols)
	o.lazy = hasLazy(o.ivals)
	for _, v := range o.lvals {
		o.null = o.null || v == nil
	}
	if verb == verbUnlink {
		return o, nil // a DELETE: no insert to check, no strategy
	}
	o.missing = missingRequired(t.Table, o.icols)
	o.ix = coveringIndex(t.Table, o.lcols)
	if o.strat, err = o.resolve(opts.Strategy); err != nil {
		return nil, err
	}
	return o, nil
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
func (o *op) checkInsert() error {
	if len(o.missing) == 0 {
		return nil
	}
	what := "the lookup nor the defaults"
	if o.defaultsRole() == roleSet {
		what = "the lookup, the values nor Options.CreateOnly"
	}
	return inputError(o.verb, "the row does not exist and cannot be created: NOT NULL column%s %s without a default %s in neither %s",
		plural(len(o.missing)), quoteList(o.missing), isAre(len(o.missing)), what)
}

// beforeWrite is what every statement that may insert the call's row
// needs first: its Lazy values computed.
func (o *op) beforeWrite(ctx context.Context) error {
	if !o.lazy {
		return nil
	}
	if err := o.resolveLazy(ctx, o.icols, o.ivals); err != nil {
		return err
	}
	o.lazy = false
	return nil
}

// beforeUpdate is what an UPDATE of the call's values needs first: the
// Lazy values among them computed, and only those (a create-only Lazy
// value is never computed for a row that exists).
func (o *op) beforeUpdate(ctx context.Context) error {
	if !o.lazy {
		return nil
	}
	if err := o.resolveLazy(ctx, o.setCols(), o.setVals()); err != nil {
		return err
	}
	o.lazy = hasLazy(o.ivals)
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
func (o *op) defaultsRole() string {
	if strings.HasPrefix(o.verb, verbUpdate) {
		return roleSet
	}
	return roleDefault
}

// columns checks and normalizes rv's values, sorted by column name,
// recording every problem in bad rather than stopping at the first. A
// column also in one of others is refused.
func (o *op) columns(bad *badInput, rv roleValues, others ...roleValues) ([]string, []any) {
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
		col, ok := o.t.Column(name)
		if !ok {
			if _, err := o.d.QuoteIdent(name); err != nil {
				bad.add("%v", err)
			} else {
				bad.unknown = append(bad.unknown, name)
			}
			continue
		}
		if _, ok := o.t.cols[name]; !ok {
			bad.add("column %q cannot be quoted by the %s dialect", name, o.d.Name())
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
		v, err := normalizeValue(col, famUnknown, v)
		if err != nil {
			bad.add("%v", err)
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

// resolve picks the strategy, or explains why the demanded one cannot work.
func (o *op) resolve(s Strategy) (Strategy, error) {
	switch s {
	case StrategyAuto:
		switch {
		case o.ix != nil && (!o.null || o.ix.NullsNotDistinct):
			return StrategyConstraint, nil
		case o.d.Features().Has(dialect.ClientRetries | dialect.SerializableIsolation):
			// CockroachDB runs every transaction with optimistic conflict
			// detection at SERIALIZABLE anyway: let it decide. (TiDB's
			// optimistic mode has no SERIALIZABLE: its snapshot isolation
			// does not conflict two inserts of different rows.)
			return StrategySerializable, nil
		}
		return StrategyLock, nil
	case StrategyConstraint:
		if o.ix == nil {
			return 0, fmt.Errorf("racefree: %s: %w (%s); add UNIQUE (%s) or use StrategyLock",
				o.verb, ErrNoCoveringIndex, strings.Join(o.lcols, ", "), strings.Join(o.lcols, ", "))
		}
		if o.null && !o.ix.NullsNotDistinct {
			return 0, fmt.Errorf("racefree: %s: %w: unique index %s treats NULLs as distinct, so it cannot keep NULL lookups unique; use StrategyLock or a NULLS NOT DISTINCT index",
				o.verb, ErrNullLookup, o.ix.Name)
		}
		return s, nil
	case StrategySerializable:
		if !o.d.Features().Has(dialect.SerializableIsolation) {
			return 0, fmt.Errorf("racefree: %s: %w: %s has no SERIALIZABLE isolation; use StrategyLock or a unique index",
				o.verb, ErrStrategyUnavailable, o.d.Server())
		}
		if o.d.Features().Has(dialect.NodeLocalNamedLocks) && !(o.ix != nil && (!o.null || o.ix.NullsNotDistinct)) {
			// Galera certifies only write-write conflicts on the same
			// rows: two nodes inserting the same lookup as two different
			// rows never conflict (measured: duplicates). Only a unique
			// index or the lock strategy's certified lock row works there.
			return 0, fmt.Errorf("racefree: %s: %w: on a Galera cluster SERIALIZABLE is per node, so it cannot keep a lookup unique without a unique index; use StrategyLock",
				o.verb, ErrStrategyUnavailable)
		}
		return s, nil
	case StrategyLock:
		return s, nil
	}
	return 0, inputError(o.verb, "unknown strategy %d", s)
}

// qtable is the table's name, quoted when the catalog was read.
func (o *op) qtable() string { return o.t.quoted }

// statKey names the adaptive statistics of this lookup shape.
func (o *op) statKey() string {
	if o.p != nil {
		return o.p.stat
	}
	return o.t.Name + "\x00" + strings.Join(o.lcols, "\x00")
}

// lockName is the named lock of this lookup: table, columns and values,
// the values typed so that 1 and "1" differ. Hashed, it fits every
// engine's limit on lock names.
func (o *op) lockName() string {
	var b strings.Builder
	b.WriteString(o.t.Name)
	for i, c := range o.lcols {
		fmt.Fprintf(&b, "\x00%s\x00", c)
		switch v := o.lvals[i].(type) {
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

type sqlKey struct {
	kind  string // "select" + lock clause, "insert", "insert-on-conflict"
	c     *codec // identifies the table and the columns read
	lcols string
	icols string
	nulls uint64 // bit i: lookup value i is NULL
}

func (o *op) key(kind string, withInsert bool) sqlKey {
	k := sqlKey{kind: kind, c: o.c}
	if len(o.lcols) == 1 {
		k.lcols = o.lcols[0]
	} else {
		k.lcols = strings.Join(o.lcols, "\x00")
	}
	if withInsert {
		k.icols = strings.Join(o.icols, "\x00")
	}
	for i, v := range o.lvals {
		if v == nil && i < 64 {
			k.nulls |= 1 << i
		}
	}
	return k
}

// lookupArgs are the bound values of the lookup's WHERE clause: the
// non-NULL lookup values (NULLs are written IS NULL).
func (o *op) lookupArgs() []any {
	if !o.null {
		return o.lvals
	}
	args := make([]any, 0, len(o.lvals))
	for _, v := range o.lvals {
		if v != nil {
			args = append(args, v)
		}
	}
	return args
}

// selectSQL is the lookup query; lock is "" or a locking clause.
func (o *op) selectSQL(lock string) (string, []any) {
	if o.p != nil && lock == "" && !o.null {
		return o.p.sel, o.lvals
	}
	k := o.key("select"+lock, false)
	if q, ok := o.db.sqlCache.Load(k); ok {
		return q.(string), o.lookupArgs()
	}
	q, args := o.buildSelectSQL(lock)
	o.db.sqlCache.Store(k, q)
	return q, args
}

func (o *op) buildSelectSQL(lock string) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	o.writeQuoted(&b, o.c.quoted)
	b.WriteString(" FROM ")
	b.WriteString(o.qtable())
	args := o.writeWhere(&b, 0)
	b.WriteString(lock)
	return b.String(), args
}

// writeCols writes cols, columns of the table that prepare checked the
// dialect can quote, quoted and separated by commas.
func (o *op) writeCols(b *strings.Builder, cols []string) {
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.t.ident(c))
	}
}

// writeQuoted writes names already quoted, separated by commas.
func (o *op) writeQuoted(b *strings.Builder, quoted []string) {
	for i, q := range quoted {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q)
	}
}

// writeWhere writes the lookup's WHERE clause, NULLs as IS NULL, with
// placeholders numbered after n, and returns the arguments.
func (o *op) writeWhere(b *strings.Builder, n int) []any {
	b.WriteString(" WHERE ")
	args := make([]any, 0, len(o.lvals))
	for i, c := range o.lcols {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(o.t.ident(c))
		if o.lvals[i] == nil {
			b.WriteString(" IS NULL")
			continue
		}
		args = append(args, o.lvals[i])
		b.WriteString(" = ")
		b.WriteString(o.d.Placeholder(n + len(args)))
	}
	return args
}

// insertSQL is the INSERT of the lookup and defaults; onConflict adds ON
// CONFLICT (lookup) DO NOTHING where the engine has it. RETURNING is added
// where the engine has it.
func (o *op) insertSQL(onConflict bool) string {
	if o.p != nil && !o.null && sameCols(o.icols, o.p.icols) {
		if onConflict {
			return o.p.ins[1]
		}
		return o.p.ins[0]
	}
	k := o.key(map[bool]string{false: "insert", true: "insert-on-conflict"}[onConflict], true)
	if q, ok := o.db.sqlCache.Load(k); ok {
		return q.(string)
	}
	q := o.buildInsertSQL(onConflict)
	o.db.sqlCache.Store(k, q)
	return q
}

func (o *op) buildInsertSQL(onConflict bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(o.qtable())
	b.WriteString(" (")
	o.writeCols(&b, o.icols)
	b.WriteString(") VALUES (")
	for i := range o.icols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.d.Placeholder(i + 1))
	}
	b.WriteString(")")
	f := o.d.Features()
	if onConflict && f.Has(dialect.OnConflict) {
		// No conflict target: a conflict on any unique index does nothing,
		// and the lookup's re-read then tells a lost race (the row is
		// there) from a clash with another row (see createOrFind).
		b.WriteString(" ON CONFLICT DO NOTHING")
	}
	if f.Has(dialect.Returning) {
		b.WriteString(" RETURNING ")
		o.writeQuoted(&b, o.c.quoted)
	}
	return b.String()
}

// read runs the lookup query on q.
func read[T any](ctx context.Context, o *op, q dialect.Querier, lock string) (T, bool, error) {
	query, args := o.selectSQL(lock)
	row, err := scanInto[T](o.c, o.queryRow(ctx, q, query, args))
	if errors.Is(err, sql.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, o.db.wrapErr(o.verb, err)
	}
	return row, true, nil
}

// insert runs the INSERT on q (inside tx when tx is non-nil). With
// onConflict, where the engine has ON CONFLICT, a row that any unique
// index refuses is skipped rather than failing. created reports that the
// row was inserted; otherwise a unique index refused it, and violation is
// the engine's error when it raised one (nil when ON CONFLICT skipped the
// row). Any other error is returned, classified. Where a failed statement
// aborts the transaction (PostgreSQL), the INSERT runs in a savepoint.
func insert[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, onConflict bool) (row T, created bool, violation *dialect.Error, err error) {
	if err := o.checkInsert(); err != nil {
		return row, false, nil, err
	}
	if err := o.beforeWrite(ctx); err != nil {
		return row, false, nil, err
	}
	query := o.insertSQL(onConflict)
	skipped := false
	do := func(ctx context.Context) error {
		if o.d.Features().Has(dialect.Returning) {
			row, err = scanInto[T](o.c, o.queryRow(ctx, q, query, o.ivals))
			if errors.Is(err, sql.ErrNoRows) { // ON CONFLICT DO NOTHING did nothing
				skipped = true
				return nil
			}
			return err
		}
		// MySQL without RETURNING: the row just inserted is visible to
		// this session, in or out of a transaction.
		if _, err := q.Exec(ctx, query, o.ivals...); err != nil {
			return err
		}
		var found bool
		row, found, err = read[T](ctx, o, q, "")
		skipped = !found // deleted at once by someone else: go round again
		return err
	}
	if tx != nil && o.d.Features().Has(dialect.FailedStatementAbortsTx) {
		err = tx.savepoint(ctx, do)
	} else {
		err = do(ctx)
	}
	if err != nil {
		ce := o.db.Classify(err)
		if ce.Class == dialect.ClassUniqueViolation {
			return row, false, ce, nil
		}
		return row, false, nil, fmt.Errorf("racefree: %s: %w", o.verb, ce)
	}
	return row, !skipped, nil, nil
}

// ownIndex reports whether the unique violation ce is of the lookup's own
// index: the row it collided with had the lookup's values.
func (o *op) ownIndex(ce *dialect.Error) bool {
	return o.ix != nil && violatesIndex(o.t.Table, ce, o.lcols)
}

// createOrFind inserts the call's row and, when a unique index refuses
// it, reads the row the lookup names. This is the rule for every unique
// conflict, whichever index reports it (MariaDB names the first unique
// index in definition order, and PostgreSQL checks the indexes one by
// one, so another index may report a collision with the very row the
// lookup names): if the lookup's row is there, the call lost a race, and
// gets that row with created false; only if it is not is the violation
// returned, as the engine raised it. A conflict that ON CONFLICT DO
// NOTHING skipped carries no error, so the INSERT is tried once more
// without it, to learn what conflicted. A violation of the lookup's own
// index whose row is gone by the re-read means a concurrent delete won:
// the INSERT is tried again, up to maxVanished times.
//
// The re-read follows the isolation level (see rereadLock); in a snapshot
// that cannot see the winner (PostgreSQL REPEATABLE READ or SERIALIZABLE)
// the call fails with ErrSerialization so that the whole transaction
// restarts and sees it.
func createOrFind[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx) (row T, created bool, err error) {
	return createOr(ctx, o, q, tx, func(ctx context.Context) (T, bool, error) {
		return read[T](ctx, o, q, o.rereadLock(tx))
	})
}

// createOr is createOrFind with the step after a conflict given: find
// returns the lookup's row if it exists (UpdateOrCreate updates it).
func createOr[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, find func(context.Context) (T, bool, error)) (row T, created bool, err error) {
	onConflict := true
	for range maxVanished {
		if h := testHookBeforeInsert.Load(); h != nil {
			(*h)()
		}
		row, created, violation, err := insert[T](ctx, o, q, tx, onConflict)
		if err != nil || created {
			return row, created, err
		}
		if h := testHookBeforeReread.Load(); h != nil {
			(*h)()
		}
		row, found, err := find(ctx)
		if err != nil {
			return row, false, err
		}
		if found {
			o.db.lostRaces.Add(1)
			return row, false, nil
		}
		switch {
		case violation == nil:
			onConflict = false // ask the engine what conflicted
		case !o.ownIndex(violation):
			return row, false, fmt.Errorf("racefree: %s: %w", o.verb, violation)
		case o.snapshotBlind(tx):
			return row, false, o.errSnapshotBlind()
		}
		// The row the INSERT collided with was deleted before the
		// re-read: try again.
	}
	return row, false, fmt.Errorf("racefree: %s: %w (%d attempts)", o.verb, ErrRowVanished, maxVanished)
}

// freshRead is how a statement in tx (nil: autocommit) reads the rows
// committed after the transaction's snapshot, such as the winner of an
// insert race: the clause to add to the SELECT, and ok false when no
// statement of tx can (only a restart can). The dialect knows; without a
// FreshReader only READ COMMITTED reads them.
func (o *op) freshRead(tx *Tx) (clause string, ok bool) {
	if tx == nil {
		return "", true
	}
	iso, known := tx.Isolation()
	if fr, ok := o.d.(dialect.FreshReader); ok {
		return fr.FreshRead(iso, known)
	}
	return "", dialect.ReadsCommitted(iso, known, false)
}

// rereadLock is the clause of the re-read after a lost race in tx: a
// snapshot that predates the winner hides its row from a plain SELECT, and
// on some engines a locking read sees the latest committed version.
func (o *op) rereadLock(tx *Tx) string {
	clause, _ := o.freshRead(tx)
	return clause
}

// snapshotBlind reports whether no statement of tx can see the winner of
// an insert race (PostgreSQL REPEATABLE READ or SERIALIZABLE, or an unknown
// level), so that only a restart of the whole transaction can.
func (o *op) snapshotBlind(tx *Tx) bool {
	_, ok := o.freshRead(tx)
	return !ok
}

// errSnapshotBlind is returned, as a serialization failure, when the row
// that won the race cannot be seen by the transaction's snapshot.
func (o *op) errSnapshotBlind() error {
	return fmt.Errorf("racefree: %s: %w", o.verb, dialect.Wrap(dialect.ClassSerialization,
		errors.New("the row that won the insert race is not visible to this transaction's snapshot: restart the transaction")))
}

// run executes a planned get-or-create with the resolved strategy.
func run[T any](ctx context.Context, o *op, insertFirst bool) (row T, created bool, err error) {
	switch o.strat {
	case StrategyConstraint:
		if o.h.tx != nil {
			row, created, err = constraintPath[T](ctx, o, o.h.q, o.h.tx, insertFirst)
		} else {
			// Outside a transaction every statement commits on its own, so
			// the whole sequence can be run again after a deadlock (MySQL
			// gap locks) or SQLITE_BUSY. The first attempt runs without the
			// retry loop's closure: it is the hit path.
			row, created, err = constraintPath[T](ctx, o, o.h.q, nil, insertFirst)
			if txo := o.opts.Tx; err != nil && txo.maxAttempts() > 1 && o.db.d.Classify(err).Class.Retryable() {
				txo.MaxAttempts = txo.maxAttempts() - 1 // the first attempt is spent
				err = o.db.retry(ctx, txo, func(ctx context.Context) error {
					var err error
					row, created, err = constraintPath[T](ctx, o, o.h.q, nil, insertFirst)
					return err
				})
			}
		}
	case StrategyLock, StrategySerializable:
		row, created, err = lockedPath[T](ctx, o)
	}
	if err == nil && o.opts.Adaptive {
		o.db.hitStat(o.statKey()).observe(!created)
	}
	return row, created, err
}

// constraintPath is the constraint strategy: read (unless insertFirst, or
// the row could not be inserted anyway), then createOrFind.
func constraintPath[T any](ctx context.Context, o *op, q dialect.Querier, tx *Tx, insertFirst bool) (row T, created bool, err error) {
	if !insertFirst || len(o.missing) > 0 || o.lazy {
		// A call that cannot create the row (a required column missing)
		// reads first even when asked to insert first: a hit is an
		// answer. So does one with a Lazy default, never computed for a
		// row that exists.
		row, found, err := read[T](ctx, o, q, "")
		if err != nil || found {
			return row, false, err
		}
	}
	return createOrFind[T](ctx, o, q, tx)
}

// lockedPath is the lock and serializable strategies: inside a
// transaction (the caller's, or one begun here), take the named lock (lock
// strategy), then read and insert.
func lockedPath[T any](ctx context.Context, o *op) (row T, created bool, err error) {
	body := func(ctx context.Context, tx *Tx) error {
		var err error
		row, created, err = lockedBody[T](ctx, o, tx)
		return err
	}
	if o.h.tx != nil {
		if err := o.checkCallerTx(ctx, o.h.tx); err != nil {
			return row, false, err
		}
		err = body(ctx, o.h.tx)
		return row, created, err
	}
	txo := o.opts.Tx
	txo.ReadOnly = false
	txo.Isolation = sql.LevelDefault
	switch {
	case o.d.Features().Has(dialect.SingleWriter):
		// One level only, and one writer at a time: nothing to choose.
	case o.strat == StrategySerializable:
		txo.Isolation = sql.LevelSerializable
	case o.strat == StrategyLock:
		// READ COMMITTED: each statement sees what was committed before it
		// began, so the read after the lock sees the previous holder's
		// row; and on MySQL no gap locks, which would make different keys
		// deadlock.
		txo.Isolation = sql.LevelReadCommitted
	}
	if o.strat == StrategyLock {
		if err := prepareLocks(ctx, o.db); err != nil {
			return row, false, err
		}
	}
	err = RunInTx(ctx, o.h.executor(), txo, body)
	return row, created, err
}

// lockedBody is one attempt of the lock or serializable strategy in tx.
func lockedBody[T any](ctx context.Context, o *op, tx *Tx) (row T, created bool, err error) {
	if o.strat == StrategyLock {
		if err := lockForGetOrCreate(ctx, tx, o.lockName()); err != nil {
			return row, false, err
		}
	}
	row, found, err := read[T](ctx, o, tx.tx, o.rereadLock(tx))
	if err != nil || found {
		return row, false, err
	}
	// Nobody else can be inserting this lookup now (lock), or the engine
	// will fail one of us (serializable); a conflict means a writer that
	// bypasses racefree, or another unique index: createOrFind tells.
	return createOrFind[T](ctx, o, tx.tx, tx)
}

// checkCallerTx refuses a caller's transaction in which the strategy
// cannot be correct.
func (o *op) checkCallerTx(ctx context.Context, tx *Tx) error {
	if o.d.Features().Has(dialect.SingleWriter) {
		return nil // one writer at a time, serializable always
	}
	iso, known := tx.Isolation()
	if !known || iso == sql.LevelDefault {
		level, err := o.currentIsolation(ctx, tx)
		if err != nil {
			return err
		}
		iso, known = level, level != sql.LevelDefault
	}
	switch o.strat {
	case StrategySerializable:
		if iso != sql.LevelSerializable {
			return fmt.Errorf("racefree: %s: %w: StrategySerializable needs a SERIALIZABLE transaction, this one is %v",
				o.verb, ErrStrategyUnavailable, iso)
		}
	case StrategyLock:
		// The read under the lock must see the previous holder's row. A
		// snapshot taken before the lock was granted does not (PostgreSQL
		// REPEATABLE READ: the transaction's first statement takes it),
		// and then nothing stops the duplicate; SERIALIZABLE is safe, its
		// conflict detection fails one of the two.
		fresh := dialect.ReadsCommitted(iso, known, false)
		if fr, ok := o.d.(dialect.FreshReader); ok {
			_, fresh = fr.FreshRead(iso, known)
		}
		if !fresh && iso != sql.LevelSerializable {
			return fmt.Errorf("racefree: %s: %w: the lock strategy cannot work in a %v transaction on %s (its snapshot predates the lock); use READ COMMITTED, SERIALIZABLE or a unique index",
				o.verb, ErrStrategyUnavailable, iso, o.d.Server())
		}
	}
	return nil
}

// currentIsolation asks the server which isolation level tx runs at, or
// answers sql.LevelDefault when the dialect cannot tell.
func (o *op) currentIsolation(ctx context.Context, tx *Tx) (sql.IsolationLevel, error) {
	ir, ok := o.d.(dialect.IsolationReader)
	if !ok {
		return sql.LevelDefault, nil
	}
	level, err := ir.CurrentIsolation(ctx, tx.tx)
	if err != nil {
		return 0, o.db.wrapErr(o.verb+": read isolation level", err)
	}
	return level, nil
}

// executor turns a handle back into the Executor it came from.
func (h handle) executor() Executor {
	switch {
	case h.tx != nil:
		return h.tx
	case h.conn != nil:
		return h.conn
	}
	return h.db
}

// Test hooks, set only by tests (getorcreate_export_test.go) to force the
// interleavings of a lost race: a winner committing between our read and
// our INSERT, and the winner's row deleted before our re-read.
var testHookBeforeInsert, testHookBeforeReread atomic.Pointer[func()]
