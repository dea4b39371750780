package sqlitedialect

import (
	"math"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.FloatLimiter = (*Dialect)(nil)

// StoresFloat reports false for NaN only: SQLite binds NaN as NULL
// (sqlite3_bind_double), so it would come back NULL; ±Inf are stored as
// they are.
func (d *Dialect) StoresFloat(f float64) bool { return !math.IsNaN(f) }
