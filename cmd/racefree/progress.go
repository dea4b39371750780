package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

// progress draws a one-line bar on a terminal while a strategy runs. On
// anything else it does nothing, so that redirected output holds only the
// results.
type progress struct {
	w        io.Writer
	on       bool
	duration time.Duration

	mu   sync.Mutex // guards done
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, on bool, d time.Duration) *progress {
	return &progress{w: w, on: on, duration: d}
}

// begin starts drawing for a strategy whose workers start at start.
func (p *progress) begin(spec *lab.Spec, start time.Time) {
	if !p.on {
		return
	}
	p.end()
	p.mu.Lock()
	done := make(chan struct{})
	p.done = done
	p.mu.Unlock()
	p.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
			}
			el := time.Since(start)
			label := "starting"
			if el >= 0 {
				label = fmt.Sprintf("%4.1fs/%v", min(el, p.duration).Seconds(), p.duration)
			}
			const width = 30
			n := int(float64(width) * max(0, min(1, float64(el)/float64(p.duration))))
			fmt.Fprintf(p.w, "\r  %-12s [%s%s] %s", spec.Strategy, strings.Repeat("#", n), strings.Repeat(".", width-n), label)
		}
	})
}

// end clears the bar of the strategy that ran.
func (p *progress) end() {
	p.mu.Lock()
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *progress) stop() { p.end() }
