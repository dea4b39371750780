package mysqldialect

import (
	"math"

	"github.com/racefree/racefree/dialect"
)

var _ dialect.FloatLimiter = (*Dialect)(nil)

// StoresFloat: MySQL, MariaDB and TiDB have no NaN or infinity in DOUBLE
// and refuse them (error 1264, out of range).
func (d *Dialect) StoresFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
