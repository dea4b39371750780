package lab

import (
	"math"
	"slices"
	"time"
)

// histBase is the ratio between the bounds of consecutive latency buckets:
// 2 % wide buckets give percentiles within 1 % of the true value, with a few
// hundred buckets from a microsecond to a minute, small enough to send
// between processes as JSON.
const histBase = 1.02

var logHistBase = math.Log(histBase)

// Hist is a latency histogram with logarithmic buckets. Its zero value is
// empty and ready; it is for one goroutine at a time (merge per-worker
// histograms with Merge).
type Hist struct {
	// Buckets maps a bucket number to its count: bucket b holds latencies
	// in [histBase^b, histBase^(b+1)) nanoseconds.
	Buckets map[int]int64 `json:"buckets"`
	N       int64         `json:"n"`
}

// Record adds one latency.
func (h *Hist) Record(d time.Duration) {
	if h.Buckets == nil {
		h.Buckets = make(map[int]int64)
	}
	ns := float64(d)
	if ns < 1 {
		ns = 1
	}
	h.Buckets[int(math.Log(ns)/logHistBase)]++
	h.N++
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o Hist) {
	if h.Buckets == nil {
		h.Buckets = make(map[int]int64)
	}
	for b, n := range o.Buckets {
		h.Buckets[b] += n
	}
	h.N += o.N
}

// Quantile returns the latency below which a fraction q of the recorded
// latencies fall (the middle of its bucket), or 0 for an empty histogram.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.Buckets))
	for b := range h.Buckets {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	rank := int64(math.Ceil(q * float64(h.N)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for _, b := range keys {
		seen += h.Buckets[b]
		if seen >= rank {
			return time.Duration(math.Pow(histBase, float64(b)+0.5))
		}
	}
	return time.Duration(math.Pow(histBase, float64(keys[len(keys)-1])+0.5))
}
