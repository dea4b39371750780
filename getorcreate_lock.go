package racefree

import (
	"context"
	"fmt"

	"github.com/racefree/racefree/dialect"
)

// lockForGetOrCreate takes the lock strategy's named lock for the rest of
// tx.
func lockForGetOrCreate(ctx context.Context, tx *Tx, name string) error {
	if tx.db.d.Features().Has(dialect.SingleWriter) {
		return nil // the IMMEDIATE write transaction already excludes every writer
	}
	return fmt.Errorf("racefree: lock %s: %w", name, ErrStrategyUnavailable)
}
