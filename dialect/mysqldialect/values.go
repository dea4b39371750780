package mysqldialect

import (
	"math"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.FloatLimiter = (*Dialect)(nil)

// StoresFloat reports false for NaN and ±Inf: MySQL, MariaDB and TiDB have
// no such DOUBLE values and refuse them (error 1264, out of range).
func (d *Dialect) StoresFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
