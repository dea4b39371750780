package backoff

import (
	"testing"
	"time"
)

func TestPolicy_Delay(t *testing.T) {
	p := Policy{Base: time.Millisecond, Max: 50 * time.Millisecond}
	for attempt := 0; attempt < 100; attempt++ {
		limit := p.Max
		if attempt < 7 {
			limit = time.Millisecond << max(attempt-1, 0)
		}
		for range 50 {
			if d := p.Delay(attempt); d < 0 || d > limit {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", attempt, d, limit)
			}
		}
	}
	if got := (Policy{}).Delay(3); got != 0 {
		t.Fatalf("zero policy Delay = %v, want 0", got)
	}
}
