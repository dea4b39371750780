package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/racefree/racefree"
)

// Runner runs cases against one database: it gives each case a fresh
// table, measures it, and drops the table.
type Runner struct {
	DB       *racefree.DB
	Batch    int // items per call of the batch case
	Accounts int // accounts of the transfer case
	// Measure configures the ratio phase; its Step is overridden by Step
	// below when that is set.
	Measure MeasureConfig
	// Step, if set, is called after every segment of every case.
	Step func(c *Case, side Side, round int)
}

// Env returns the environment of a case whose table is table.
func (r *Runner) Env(table string) Env {
	return Env{DB: r.DB, Table: table, Batch: r.Batch, Accounts: r.Accounts, Run: nonce()}
}

// Prepare creates a fresh table for c with c.Setup and returns its
// environment and a function that drops the table. The drop runs even
// when ctx has ended.
func (r *Runner) Prepare(ctx context.Context, c *Case) (Env, func(), error) {
	env := r.Env(TableName(c.Name))
	drop := func() {
		if q, err := r.DB.Dialect().Quote(env.Table); err == nil {
			r.DB.SQL().ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+q)
		}
		// racefree remembers each table's catalog facts and plans; a
		// table of the same name will never come back, but forgetting
		// keeps the DB's caches from growing with every case.
		r.DB.ForgetSchema(env.Table)
	}
	if err := c.Setup(context.WithoutCancel(ctx), env); err != nil {
		drop()
		return Env{}, nil, fmt.Errorf("set up case %s: %w", c.Name, err)
	}
	return env, drop, nil
}

// RunCase measures c (see Measure). A case the engine cannot run comes
// back with Skipped set, a failed one with Error set; the error return is
// only for a run interrupted through ctx.
func (r *Runner) RunCase(ctx context.Context, c *Case) (CaseResult, error) {
	res := CaseResult{Name: c.Name, Title: c.Title, Racefree: c.Racefree, Raw: c.Raw, Goroutines: c.Goroutines}
	fail := func(err error) (CaseResult, error) {
		switch {
		case ctx.Err() != nil:
			return res, ctx.Err()
		case errors.Is(err, ErrUnsupported):
			res.Skipped = err.Error()
		default:
			res.Error = err.Error()
		}
		return res, nil
	}
	env, drop, err := r.Prepare(ctx, c)
	if err != nil {
		return fail(err)
	}
	defer drop()
	pair, err := c.Ops(ctx, env)
	if err != nil {
		return fail(err)
	}
	cfg := r.Measure
	if r.Step != nil {
		cfg.Step = func(s Side, i int) { r.Step(c, s, i) }
	}
	if cfg.Classify == nil {
		cfg.Classify = Classifier(r.DB)
	}
	m, err := Measure(ctx, c, pair, cfg)
	if err != nil {
		return fail(err)
	}
	return m, nil
}
