package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// mustSetup creates the application's tables with a prefix of their own on
// db and drops them when tb ends.
func mustSetup(tb testing.TB, db *racefree.DB) string {
	tb.Helper()
	prefix := testdb.UniqueName("rfserve")
	ctx := context.Background()
	if err := Setup(ctx, db, prefix); err != nil {
		tb.Fatalf("Setup: %v", err)
	}
	tb.Cleanup(func() {
		if err := Drop(context.Background(), db, prefix); err != nil {
			tb.Errorf("Drop: %v", err)
		}
	})
	return prefix
}

// mustServer serves a fresh application over db in this process.
func mustServer(tb testing.TB, db *racefree.DB, think time.Duration) (*httptest.Server, string) {
	tb.Helper()
	prefix := mustSetup(tb, db)
	app, err := New(context.Background(), db, Config{Procs: 1, Think: think, Prefix: prefix})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(app.Handler())
	tb.Cleanup(srv.Close)
	return srv, prefix
}

// client makes one connection per request, as the real server demands.
var client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// call sends one request and decodes the JSON answer into dst (if not
// nil), returning the status and the raw body.
func call(tb testing.TB, method, url, contentType, body string, dst any) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Errorf("%s %s: %v", method, url, err)
		return 0, ""
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if dst != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, dst); err != nil {
			tb.Errorf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return res.StatusCode, string(raw)
}

func postJSON(tb testing.TB, url string, v any, dst any) (int, string) {
	tb.Helper()
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(v)
	return call(tb, "POST", url, "application/json", b.String(), dst)
}

// concurrently runs f(i) for i in [0, n) at once, after a barrier.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// countAll counts the rows of a table.
func countAll(tb testing.TB, db *racefree.DB, table string) int64 {
	tb.Helper()
	return testdb.QueryInt(tb, db, "SELECT COUNT(*) FROM "+table)
}
