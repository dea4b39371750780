package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// The get-or-create cases share one table shape: an id, a unique name (the
// lookup) and a value (the default for a new row).

// tag is a row of the get-or-create table.
type tag struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Value int64  `db:"value"`
}

// hitKey is the row the hit case finds.
const hitKey = "hit"

// stormSpan is how many calls of the storm case share one key before it
// moves on: each key is created once under contention, then hit.
const stormSpan = 64

func init() {
	Register(&Case{
		Name: "hit", Title: "get-or-create, existing row",
		Racefree: "GetOrCreate of an existing row", Raw: "SELECT by primary key",
		Goroutines: 1, Setup: setupTags, Ops: hitOps,
	})
	Register(&Case{
		Name: "miss", Title: "get-or-create, new row",
		Racefree: "GetOrCreate of a new row (reads first)", Raw: "one insert-if-absent returning the row",
		Goroutines: 1, Setup: setupTags, Ops: missOps(false),
	})
	Register(&Case{
		Name: "miss-insert-first", Title: "create-or-get, new row",
		Racefree: "CreateOrGet of a new row (inserts first)", Raw: "one insert-if-absent returning the row",
		Goroutines: 1, Setup: setupTags, Ops: missOps(true),
	})
	Register(&Case{
		Name: "storm", Title: "hot-key storm, 8 callers",
		Racefree: "GetOrCreate, 8 goroutines on one key (new key every 64 calls)", Raw: "SELECT; insert-if-absent; SELECT again on a lost race",
		Goroutines: 8, Setup: setupTags, Ops: stormOps,
	})
	Register(&Case{
		Name: "batch", Title: "batch of N new rows",
		Racefree: "GetOrCreateMany of N new rows", Raw: "N GetOrCreate calls",
		Goroutines: 1, Setup: setupTags, Ops: batchOps,
	})
}

// setupTags creates the get-or-create table with its unique lookup index
// and the row the hit case finds.
func setupTags(ctx context.Context, env Env) error {
	d := env.DB.Dialect()
	ty, err := typesFor(d)
	if err != nil {
		return err
	}
	qs, err := stmts(d, env.Table,
		"CREATE TABLE {t} (id "+ty.id+", name "+ty.text+" NOT NULL, value BIGINT NOT NULL DEFAULT 0)"+ty.suffix,
		"CREATE UNIQUE INDEX "+env.Table+"_name ON {t} (name)",
		"INSERT INTO {t} (name, value) VALUES ('"+hitKey+"', 1)",
	)
	if err != nil {
		return err
	}
	return execAll(ctx, env.DB.SQL(), qs...)
}

func hitOps(ctx context.Context, env Env) (Pair, error) {
	d := env.DB.Dialect()
	qs, err := stmts(d, env.Table, "SELECT id, name, value FROM {t} WHERE id = ?", "SELECT id FROM {t} WHERE name = ?")
	if err != nil {
		return Pair{}, err
	}
	pkSelect := qs[0]
	var id int64
	if err := env.DB.SQL().QueryRowContext(ctx, qs[1], hitKey).Scan(&id); err != nil {
		return Pair{}, fmt.Errorf("find the hit case's row: %w", err)
	}
	raw := func(ctx context.Context, _ *Worker) error {
		var r tag
		return env.DB.SQL().QueryRowContext(ctx, pkSelect, id).Scan(&r.ID, &r.Name, &r.Value)
	}
	rf := func(ctx context.Context, _ *Worker) error {
		_, created, err := racefree.GetOrCreate[tag](ctx, env.DB, env.Table, racefree.Values{"name": hitKey}, racefree.Values{"value": 1}, racefree.Options{})
		if err == nil && created {
			err = errors.New("bench: hit case created its row")
		}
		return err
	}
	return Pair{Raw: raw, Racefree: rf, RawSQL: pkSelect}, nil
}

// insertIfAbsent is the one statement a careful programmer writes to add a
// row that may exist: INSERT … ON CONFLICT DO NOTHING RETURNING, or the
// engine's equivalent, chosen by the dialect's features.
type insertIfAbsent struct {
	query     string
	returning bool // the statement returns the new row; otherwise LastInsertId
}

func newInsertIfAbsent(d dialect.Dialect, table string) (insertIfAbsent, error) {
	f := d.Features()
	var q string
	var ret bool
	switch {
	case f.Has(dialect.OnConflict) && f.Has(dialect.Returning):
		q, ret = "INSERT INTO {t} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id, name, value", true
	case f.Has(dialect.OnDuplicateKey) && f.Has(dialect.Returning):
		// MariaDB 10.5+: IGNORE turns the duplicate into a warning and
		// RETURNING gives no row for it.
		q, ret = "INSERT IGNORE INTO {t} (name, value) VALUES (?, ?) RETURNING id, name, value", true
	case f.Has(dialect.OnDuplicateKey):
		q = "INSERT IGNORE INTO {t} (name, value) VALUES (?, ?)"
	case f.Has(dialect.OnConflict):
		q = "INSERT INTO {t} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
	default:
		return insertIfAbsent{}, fmt.Errorf("bench: %s has no insert-if-absent statement: %w", d.Name(), ErrUnsupported)
	}
	s, err := stmt(d, table, q)
	return insertIfAbsent{query: s, returning: ret}, err
}

// exec inserts (name, value) unless name exists, and reports whether it
// did.
func (ins insertIfAbsent) exec(ctx context.Context, q sqlQuerier, name string, value int64) (bool, error) {
	if ins.returning {
		var r tag
		err := q.QueryRowContext(ctx, ins.query, name, value).Scan(&r.ID, &r.Name, &r.Value)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	res, err := q.ExecContext(ctx, ins.query, name, value)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	_, err = res.LastInsertId()
	return err == nil, err
}

// keys hands out keys that no other call, goroutine or process uses.
type keys struct {
	prefix string
	seq    atomic.Int64
}

func newKeys(side string) *keys { return &keys{prefix: side + "-" + nonce() + "-"} }

func (k *keys) next() string { return k.prefix + strconv.FormatInt(k.seq.Add(1), 10) }

func missOps(insertFirst bool) func(ctx context.Context, env Env) (Pair, error) {
	return func(ctx context.Context, env Env) (Pair, error) {
		ins, err := newInsertIfAbsent(env.DB.Dialect(), env.Table)
		if err != nil {
			return Pair{}, err
		}
		rawKeys, rfKeys := newKeys("raw"), newKeys("rf")
		raw := func(ctx context.Context, _ *Worker) error {
			created, err := ins.exec(ctx, env.DB.SQL(), rawKeys.next(), 1)
			if err == nil && !created {
				err = errors.New("bench: miss case found its new key")
			}
			return err
		}
		call := racefree.GetOrCreate[tag]
		if insertFirst {
			call = racefree.CreateOrGet[tag]
		}
		rf := func(ctx context.Context, _ *Worker) error {
			_, created, err := call(ctx, env.DB, env.Table, racefree.Values{"name": rfKeys.next()}, racefree.Values{"value": 1}, racefree.Options{})
			if err == nil && !created {
				err = errors.New("bench: miss case found its new key")
			}
			return err
		}
		return Pair{Raw: raw, Racefree: rf, RawSQL: ins.query}, nil
	}
}

func stormOps(ctx context.Context, env Env) (Pair, error) {
	d := env.DB.Dialect()
	ins, err := newInsertIfAbsent(d, env.Table)
	if err != nil {
		return Pair{}, err
	}
	sel, err := stmt(d, env.Table, "SELECT id, name, value FROM {t} WHERE name = ?")
	if err != nil {
		return Pair{}, err
	}
	// Keys shared by every process of one launch (env.Run), so that
	// processes started together storm the same keys; each process moves
	// on after its own stormSpan calls.
	rawKeys, rfKeys := &keys{prefix: "raw-" + env.Run + "-"}, &keys{prefix: "rf-" + env.Run + "-"}
	hot := func(k *keys) string { return k.prefix + strconv.FormatInt(k.seq.Add(1)/stormSpan, 10) }
	raw := func(ctx context.Context, _ *Worker) error {
		key := hot(rawKeys)
		db := env.DB.SQL()
		var r tag
		err := db.QueryRowContext(ctx, sel, key).Scan(&r.ID, &r.Name, &r.Value)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		created, err := ins.exec(ctx, db, key, 1)
		if err != nil || created {
			return err
		}
		return db.QueryRowContext(ctx, sel, key).Scan(&r.ID, &r.Name, &r.Value) // lost the race: read the winner's row
	}
	rf := func(ctx context.Context, _ *Worker) error {
		_, _, err := racefree.GetOrCreate[tag](ctx, env.DB, env.Table, racefree.Values{"name": hot(rfKeys)}, racefree.Values{"value": 1}, racefree.Options{})
		return err
	}
	return Pair{Raw: raw, Racefree: rf, RawSQL: joinSQL(sel, ins.query, sel)}, nil
}

func batchOps(ctx context.Context, env Env) (Pair, error) {
	n := env.Batch
	if n < 1 {
		return Pair{}, fmt.Errorf("bench: batch of %d items", n)
	}
	rawKeys, rfKeys := newKeys("raw"), newKeys("rf")
	raw := func(ctx context.Context, _ *Worker) error {
		for range n {
			_, created, err := racefree.GetOrCreate[tag](ctx, env.DB, env.Table, racefree.Values{"name": rawKeys.next()}, racefree.Values{"value": 1}, racefree.Options{})
			if err != nil {
				return err
			}
			if !created {
				return errors.New("bench: batch case found a new key")
			}
		}
		return nil
	}
	rf := func(ctx context.Context, _ *Worker) error {
		items := make([]racefree.Item, n)
		for i := range items {
			items[i] = racefree.Item{Lookup: racefree.Values{"name": rfKeys.next()}, Defaults: racefree.Values{"value": 1}}
		}
		res, err := racefree.GetOrCreateMany[tag](ctx, env.DB, env.Table, items, racefree.Options{})
		if err != nil {
			return err
		}
		for _, r := range res {
			if !r.Created {
				return errors.New("bench: batch case found a new key")
			}
		}
		return nil
	}
	return Pair{Raw: raw, Racefree: rf, RawSQL: fmt.Sprintf("%d × GetOrCreate (racefree, one call per row)", n)}, nil
}
