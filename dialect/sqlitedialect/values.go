package sqlitedialect

import (
	"math"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.FloatLimiter = (*Dialect)(nil)

// StoresFloat: SQLite binds NaN as NULL (sqlite3_bind_double), so a NaN
// would come back NULL; ±Inf are stored as they are.
func (d *Dialect) StoresFloat(f float64) bool { return !math.IsNaN(f) }
