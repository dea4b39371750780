package lab

import (
	"context"

	"github.com/racefree/racefree"
)

// The racefree strategy of each scenario: the library's own calls, so that
// the lab measures what users get.

// gocRow is what the goc scenario's GetOrCreate reads back.
type gocRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func rfGetOrCreate(ctx context.Context, w *worker, _ *keyed, args []any) error {
	_, _, err := racefree.GetOrCreate[gocRow](ctx, w.db, w.spec.Table,
		racefree.Values{"name": args[0]}, racefree.Values{"value": 1}, racefree.Options{})
	return err
}

func rfLink(ctx context.Context, w *worker, _ *keyed, args []any) error {
	_, err := racefree.Link(ctx, w.db, w.spec.Table, racefree.Values{"post_id": args[0], "tag_id": args[1]}, racefree.Options{})
	return err
}

// rfIncrement is one atomic statement: the database does the read and the
// write under its own row lock.
func rfIncrement(ctx context.Context, w *worker, id int64) error {
	_, err := w.sql.ExecContext(ctx, w.q("UPDATE {t} SET n = n + 1 WHERE id = ?"), id)
	return err
}
