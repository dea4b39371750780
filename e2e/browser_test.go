package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumEnv names the Chromium binary; unset, chromium is looked up on
// PATH.
const chromiumEnv = "RACEFREE_CHROMIUM"

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	unavailable(t, "no Chromium found (install Debian's chromium, or set %s to the browser's path)", chromiumEnv)
	return ""
}

// browser is one headless Chromium with a fresh profile, and what the
// page did that the test checks afterwards.
type browser struct {
	ctx context.Context

	mu         sync.Mutex // guards the fields below
	exceptions []string   // uncaught JavaScript exceptions
	requests   []string   // URLs the page requested
}

// newBrowser starts Chromium as this machine allows it: headless, as root
// without the sandbox, with no network of its own (the machine's is
// closed), on a profile of its own. Everything it does ends with ctx.
func newBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first action starts the browser, which then lives as long as
	// bctx: no shorter timeout here (ctx bounds it).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{ctx: bctx}
	err := chromedp.Listen(bctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.exceptions = append(b.exceptions, msg)
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, ev.Request.URL)
		}
	})
	if err != nil {
		t.Fatalf("listen to the page: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}
	return b
}

// do runs actions with a time limit, failing t on error.
func (b *browser) do(t *testing.T, what string, limit time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, with a time limit, failing t
// on error.
func get[T any](t *testing.T, b *browser, what string, limit time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitRun waits until section (#goc or #tx) has finished run number n.
func waitRun(section string, n int) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).dataset.run === %q`, section, strconv.Itoa(n)),
		chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
}

// panel is what a panel of the page shows after a click.
type panel struct {
	State    string `json:"state"`
	Message  string `json:"message"`
	Naive    column `json:"naive"`
	Racefree column `json:"racefree"`
}

type column struct {
	Answers int    `json:"answers"` // rows listed
	IDs     string `json:"ids"`     // distinct ids (data-ids)
	Rows    string `json:"rows"`    // rows now in the table for the name
	Errors  string `json:"errors"`
	PIDs    string `json:"pids"` // distinct serving processes
	Before  string `json:"before"`
	After   string `json:"after"`
	Lost    string `json:"lost"`
	Verdict string `json:"verdict"` // its text
}

// readPanel reads a panel's state, message and both columns as the page
// shows them.
func readPanel(section string) chromedp.Action[panel] {
	return chromedp.Evaluate[panel](fmt.Sprintf(`(() => {
	  const col = (id) => {
	    const c = document.querySelector(id), v = c.querySelector('.verdict');
	    return { answers: c.querySelectorAll('tbody tr').length, ids: v.dataset.ids || '', rows: v.dataset.rows || '',
	      errors: v.dataset.errors || '', pids: v.dataset.pids || '', before: v.dataset.before || '',
	      after: v.dataset.after || '', lost: v.dataset.lost || '', verdict: v.textContent };
	  };
	  const m = document.querySelector('#message');
	  return { state: document.querySelector('%[1]s').dataset.state, message: m.hidden ? '' : m.textContent,
	    naive: col('%[1]s-naive'), racefree: col('%[1]s-racefree') };
	})()`, section))
}

// The classic experiment, in a real browser: the naive column shows more
// than one id at least once across the clicks, racefree's never does; the
// transfer panel's racefree total never changes; bad input is refused with
// a message; reset empties the tables; the page loads nothing from
// elsewhere; Ctrl-C stops every worker process.
func TestServe_Browser(t *testing.T) {
	watchdog(t, 12*time.Minute)
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			const procs = 6
			srv := startServe(t, e, procs)
			b := newBrowser(t, ctx)

			b.do(t, "open the page", 60*time.Second,
				chromedp.Navigate(srv.url),
				chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
			)
			info := get(t, b, "read the note", 10*time.Second, chromedp.Text(chromedp.CSS(`#info`)))
			t.Logf("page: %s", info)
			wantServer := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL", "mysql": "M"}[e.name]
			for _, want := range []string{wantServer, fmt.Sprintf("%d worker processes", procs), "isolation level", "think time"} {
				if !strings.Contains(info, want) {
					t.Errorf("the page's note %q lacks %q", info, want)
				}
			}

			clicks := 8
			if v, err := strconv.Atoi(os.Getenv(clicksEnv)); err == nil && v > 0 {
				clicks = v
			}
			dupClicks, crossProc := 0, 0
			for k := 1; k <= clicks; k++ {
				name := fmt.Sprintf("e2e %s %d %d", e.name, k, time.Now().UnixNano())
				b.do(t, fmt.Sprintf("get-or-create click %d", k), 120*time.Second,
					chromedp.SetValue(chromedp.CSS(`#name`), name),
					chromedp.Click(chromedp.CSS(`#goc-go`)),
					waitRun("#goc", k),
				)
				got := get(t, b, "read the panel", 10*time.Second, readPanel("#goc"))
				if got.State != "done" {
					t.Fatalf("click %d: panel state %q, message %q", k, got.State, got.Message)
				}
				t.Logf("click %d: naive %s ids, %s rows (%d answers from %s processes); racefree %s ids, %s rows (%s processes)",
					k, got.Naive.IDs, got.Naive.Rows, got.Naive.Answers, got.Naive.PIDs, got.Racefree.IDs, got.Racefree.Rows, got.Racefree.PIDs)
				for _, c := range []struct {
					name string
					col  column
				}{{"naive", got.Naive}, {"racefree", got.Racefree}} {
					if c.col.Answers != 10 || c.col.Errors != "0" {
						t.Errorf("click %d, %s: %d answers listed, %s errors, want 10 and 0: %s", k, c.name, c.col.Answers, c.col.Errors, c.col.Verdict)
					}
				}
				if got.Racefree.IDs != "1" || got.Racefree.Rows != "1" {
					t.Errorf("click %d: the racefree column shows %s ids and %s rows, want 1 and 1: %s", k, got.Racefree.IDs, got.Racefree.Rows, got.Racefree.Verdict)
				}
				if got.Naive.IDs != "1" || got.Naive.Rows != "1" {
					dupClicks++
					if !strings.Contains(got.Naive.Verdict, "duplicates") {
						t.Errorf("click %d: naive column has %s ids but its verdict does not say so: %q", k, got.Naive.IDs, got.Naive.Verdict)
					}
				}
				if p, _ := strconv.Atoi(got.Naive.PIDs); p > 1 {
					crossProc++
				}
			}
			t.Logf("%s: the naive column showed more than one id (or row) in %d of %d clicks; answers came from more than one process in %d",
				e.name, dupClicks, clicks, crossProc)
			if dupClicks == 0 {
				t.Errorf("the naive column never showed more than one id in %d clicks: the race did not show", clicks)
			}
			if crossProc == 0 {
				t.Errorf("every click's answers came from a single process: the workers do not share the port")
			}

			drift, lost := 0, 0
			const txClicks = 5
			for k := 1; k <= txClicks; k++ {
				b.do(t, fmt.Sprintf("transfer click %d", k), 120*time.Second,
					chromedp.Click(chromedp.CSS(`#tx-go`)),
					waitRun("#tx", k),
				)
				got := get(t, b, "read the panel", 10*time.Second, readPanel("#tx"))
				if got.State != "done" {
					t.Fatalf("transfer click %d: panel state %q, message %q", k, got.State, got.Message)
				}
				t.Logf("transfer click %d: naive %s → %s (lost %s); racefree %s → %s (lost %s)", k,
					got.Naive.Before, got.Naive.After, got.Naive.Lost, got.Racefree.Before, got.Racefree.After, got.Racefree.Lost)
				if got.Racefree.Before != "2000" || got.Racefree.After != "2000" || got.Racefree.Lost != "false" || got.Racefree.Errors != "0" {
					t.Errorf("transfer click %d: racefree total %s → %s, lost %s, errors %s; want 2000 → 2000, nothing lost: %s",
						k, got.Racefree.Before, got.Racefree.After, got.Racefree.Lost, got.Racefree.Errors, got.Racefree.Verdict)
				}
				if got.Naive.Before != got.Naive.After {
					drift++
				}
				if got.Naive.Lost == "true" {
					lost++
				}
			}
			t.Logf("%s: the naive transfers changed the total in %d of %d clicks and lost transfers in %d", e.name, drift, txClicks, lost)
			if drift+lost == 0 {
				t.Errorf("the naive transfers neither changed the total nor lost a transfer in %d clicks", txClicks)
			}

			// Bad input: the server refuses it (4xx), the page says why.
			for i, c := range []struct{ name, want string }{
				{"   ", "the name is empty"},
				{strings.Repeat("x", 101), "101 characters long"},
			} {
				b.do(t, "bad input "+c.want, 60*time.Second,
					chromedp.SetValue(chromedp.CSS(`#name`), c.name),
					chromedp.Click(chromedp.CSS(`#goc-go`)),
					waitRun("#goc", clicks+1+i),
				)
				got := get(t, b, "read the panel", 10*time.Second, readPanel("#goc"))
				if got.State != "refused" || !strings.Contains(got.Message, c.want) || !strings.Contains(got.Message, "HTTP 400") {
					t.Errorf("bad input %q: state %q, message %q; want refused with HTTP 400 and %q", c.name, got.State, got.Message, c.want)
				}
			}

			// Reset: the tables are emptied, the accounts refilled.
			b.do(t, "reset", 60*time.Second,
				chromedp.Click(chromedp.CSS(`#reset`)),
				chromedp.WaitReady(chromedp.CSS(`body[data-resets="1"]`)),
			)
			var state struct {
				Naive, Racefree struct{ Total int64 }
			}
			srv.getJSON(t, "/api/transfer/state", &state)
			if state.Naive.Total != 2000 || state.Racefree.Total != 2000 {
				t.Errorf("after reset: totals %d and %d, want 2000 and 2000", state.Naive.Total, state.Racefree.Total)
			}

			b.mu.Lock()
			for _, ex := range b.exceptions {
				t.Errorf("JavaScript exception on the page: %s", ex)
			}
			for _, u := range b.requests {
				if !strings.HasPrefix(u, srv.url) {
					t.Errorf("the page requested %s, outside the server: it must work offline", u)
				}
			}
			b.mu.Unlock()

			srv.stop(t) // Ctrl-C: clean exit, no worker left behind
		})
	}
}

// watchdog panics, failing the whole run with every goroutine's stack, if
// t has not ended within d.
func watchdog(t *testing.T, d time.Duration) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		select {
		case <-done:
		case <-time.After(d):
			panic(fmt.Sprintf("watchdog: %s still running after %v", t.Name(), d))
		}
	}()
}
