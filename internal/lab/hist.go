package lab

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The range and precision of every latency histogram. All histograms share
// them, so merging never drops a value; latencies outside the range are
// clamped to it when recorded (a call is cut off after OpTimeout, well
// inside it).
const (
	histMin    = time.Microsecond
	histMax    = 10 * time.Minute
	histDigits = 3 // significant figures: quantiles within 0.1 % of the true value
	// histUnit is the histogram's lowest discernible value, its finest
	// resolution. It is 1 ns, not histMin: with a 1 µs unit (512 ns in
	// practice) a 10 µs latency could be off by 5 %.
	histUnit = time.Nanosecond
)

// Hist is a latency histogram: an HDR histogram of nanoseconds. Its zero
// value is empty and ready; it is for one goroutine at a time (merge
// per-worker histograms with Merge). It travels between processes as JSON,
// in the HdrHistogram V2 compressed encoding.
type Hist struct {
	h *hdrhistogram.Histogram // nil until the first value
}

func newHDR() *hdrhistogram.Histogram {
	return hdrhistogram.New(int64(histUnit), int64(histMax), histDigits)
}

// Record adds one latency, clamped to the histogram's range.
func (h *Hist) Record(d time.Duration) {
	if h.h == nil {
		h.h = newHDR()
	}
	// Cannot fail: the value is within the range, and the total count
	// cannot reach MaxInt64.
	_ = h.h.RecordValue(int64(min(max(d, histMin), histMax)))
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o Hist) {
	if o.h == nil {
		return
	}
	if h.h == nil {
		h.h = o.h.Clone()
		return
	}
	if o.h == h.h {
		o.h = o.h.Clone() // merging into itself would read what it writes
	}
	// Drops nothing: every Hist has the same range (UnmarshalJSON refuses
	// others).
	h.h.Merge(o.h)
}

// Count is the number of latencies recorded.
func (h *Hist) Count() int64 {
	if h.h == nil {
		return 0
	}
	return h.h.TotalCount()
}

// Quantile returns the latency below which a fraction q of the recorded
// latencies fall, or 0 for an empty histogram.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.h == nil {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(q * 100))
}

// MarshalJSON encodes the histogram as a JSON string holding its
// HdrHistogram V2 compressed encoding (base64), or null when empty.
func (h Hist) MarshalJSON() ([]byte, error) {
	if h.h == nil {
		return []byte("null"), nil
	}
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode latency histogram: %w", err)
	}
	return json.Marshal(string(b))
}

// UnmarshalJSON decodes what MarshalJSON encoded. It refuses a histogram
// with another range or precision, whose counts could not be merged
// without loss.
func (h *Hist) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("latency histogram: %w", err)
	}
	if s == nil {
		h.h = nil
		return nil
	}
	d, err := hdrhistogram.Decode([]byte(*s))
	if err != nil {
		return fmt.Errorf("decode latency histogram: %w", err)
	}
	if d.LowestTrackableValue() != int64(histUnit) || d.HighestTrackableValue() != int64(histMax) || d.SignificantFigures() != histDigits {
		return fmt.Errorf("latency histogram has unit %v, maximum %v and %d significant figures, want %v, %v and %d",
			time.Duration(d.LowestTrackableValue()), time.Duration(d.HighestTrackableValue()), d.SignificantFigures(), histUnit, histMax, histDigits)
	}
	h.h = d
	return nil
}
