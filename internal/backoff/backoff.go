// Package backoff computes jittered exponential delays between retries.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff with full jitter: the n-th delay is drawn
// uniformly from [0, min(Max, Base·2ⁿ⁻¹)]. Full jitter spreads workers that
// failed together, which matters most when the failure was a conflict
// between them.
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the delay before retry number attempt (1 for the first
// retry). It is safe for concurrent use.
func (p Policy) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceiling := p.Max
	if shift := attempt - 1; shift < 32 {
		if d := p.Base << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}
