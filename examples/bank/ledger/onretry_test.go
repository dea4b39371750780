package ledger_test

import (
	"time"

	"github.com/racefree/racefree"
)

// onRetry is policy b that also calls f before each retry it allows, with
// the failed attempt's number, its error and the pause: how tests count
// and inspect retries.
func onRetry(b racefree.Backoff, f func(attempt int, err error, delay time.Duration)) racefree.RetryPolicy {
	return racefree.RetryFunc(func(a racefree.FailedAttempt) (time.Duration, error) {
		delay, stop := b.NextRetry(a)
		if stop == nil {
			f(a.Attempt, a.Err, delay)
		}
		return delay, stop
	})
}
