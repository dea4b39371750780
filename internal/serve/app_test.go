package serve

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/testdb"
)

// Bad input gets a 4xx with a message that names the problem, and writes
// nothing.
func TestApp_BadInput(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		db := e.Open(t)
		srv, prefix := mustServer(t, db, 0)
		const js = "application/json"
		tests := []struct {
			name, method, path, ctype, body string
			wantStatus                      int
			wantMsg                         string
		}{
			{"EmptyName", "POST", "/api/goc/naive", js, `{"name":""}`, 400, "the name is empty"},
			{"BlankName", "POST", "/api/goc/racefree", js, `{"name":"  \t "}`, 400, "the name is empty"},
			{"NoName", "POST", "/api/goc/racefree", js, `{}`, 400, "the name is empty"},
			{"HugeName", "POST", "/api/goc/naive", js, `{"name":"` + strings.Repeat("é", MaxNameLen+1) + `"}`, 400, "101 characters long; the longest accepted is 100"},
			{"ControlChar", "POST", "/api/goc/racefree", js, `{"name":"a\u0007b"}`, 400, "control character (U+0007)"},
			{"BadUTF8", "POST", "/api/goc/naive", js, "{\"name\":\"a\xffb\"}", 400, "the body is not valid UTF-8"},
			{"NameNotString", "POST", "/api/goc/naive", js, `{"name":42}`, 400, "name must be a string, not a JSON number"},
			{"UnknownField", "POST", "/api/goc/naive", js, `{"name":"a","admin":true}`, 400, `unknown field "admin"`},
			{"NotJSON", "POST", "/api/goc/naive", js, `name=a`, 400, "malformed request"},
			{"TwoValues", "POST", "/api/goc/racefree", js, `{"name":"a"}{"name":"b"}`, 400, "more than one JSON value"},
			{"EmptyBody", "POST", "/api/goc/racefree", js, ``, 400, "the body is empty"},
			{"FormPost", "POST", "/api/goc/naive", "application/x-www-form-urlencoded", `name=a`, 415, "must be JSON"},
			{"NoContentType", "POST", "/api/reset", "", `{}`, 415, "must be JSON"},
			{"HugeBody", "POST", "/api/goc/naive", js, `{"name":"` + strings.Repeat("a", 10000) + `"}`, 413, "larger than 4096 bytes"},
			{"UnknownMode", "POST", "/api/goc/fast", js, `{"name":"a"}`, 404, `unknown mode "fast"`},
			{"WrongMethod", "GET", "/api/goc/naive", "", ``, 405, "takes POST"},
			{"UnknownEndpoint", "GET", "/api/drop", "", ``, 404, "no such endpoint"},
			{"RowsNoName", "GET", "/api/goc/rows", "", ``, 400, "the name is empty"},
			{"SameAccount", "POST", "/api/transfer/naive", js, `{"from":1,"to":1,"amount":5}`, 400, "both account 1"},
			{"NoSuchAccount", "POST", "/api/transfer/racefree", js, `{"from":3,"to":1,"amount":5}`, 400, "from must be account 1 or 2"},
			{"ZeroAmount", "POST", "/api/transfer/racefree", js, `{"from":1,"to":2,"amount":0}`, 400, "amount must be between 1"},
			{"NegativeAmount", "POST", "/api/transfer/naive", js, `{"from":1,"to":2,"amount":-500}`, 400, "amount must be between 1"},
			{"HugeAmount", "POST", "/api/transfer/naive", js, `{"from":1,"to":2,"amount":1e12}`, 400, "amount must be"},
			{"FractionalAmount", "POST", "/api/transfer/naive", js, `{"from":1,"to":2,"amount":1.5}`, 400, "amount must be a whole number"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body := call(t, tc.method, srv.URL+tc.path, tc.ctype, tc.body, nil)
				var eb errorBody
				if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error == "" || eb.PID == 0 {
					t.Errorf("answer is not a JSON error (%v): %s", err, body)
				}
				if status != tc.wantStatus || !strings.Contains(eb.Error, tc.wantMsg) {
					t.Errorf("%s %s %s: %d %s; want %d and %q", tc.method, tc.path, tc.body, status, body, tc.wantStatus, tc.wantMsg)
				}
			})
		}
		tabs, _ := tablesFor(db, prefix)
		for _, q := range []string{tabs.qNaiveNames, tabs.qNames} {
			if n := countAll(t, db, q); n != 0 {
				t.Errorf("%s holds %d rows after bad input only, want 0", q, n)
			}
		}
		for _, q := range []string{tabs.qNaiveAccounts, tabs.qAccounts} {
			if n := testdb.QueryInt(t, db, "SELECT SUM(balance) FROM "+q); n != 2*InitialBalance {
				t.Errorf("%s holds %d in all after bad input only, want %d", q, n, 2*InitialBalance)
			}
		}
	})
}

// The get-or-create race through HTTP, many goroutines of one process: the
// naive handler creates duplicates (asserted, so that the test cannot pass
// by never racing), racefree's creates one row and hands every caller its
// id.
func TestApp_GetOrCreateRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 2*time.Minute)
		db := e.Open(t)
		srv, _ := mustServer(t, db, 30*time.Millisecond)
		const n = 12
		var name string
		answers := map[string][]gocAnswer{}
		storm := func(mode string) []gocAnswer {
			got := make([]gocAnswer, n)
			concurrently(n, func(i int) {
				if status, body := postJSON(t, srv.URL+"/api/goc/"+mode, gocRequest{Name: name}, &got[i]); status != 200 {
					t.Errorf("%s request %d: %d %s", mode, i, status, body)
				}
			})
			return got
		}
		// The naive storm races only when requests overlap, which a loaded
		// machine may not let happen in one storm: up to three, each on a
		// fresh name, until two requests created a row each.
		for try := 1; try <= 3; try++ {
			name = "race ünïcode " + e.Name + " " + strconv.Itoa(try)
			answers["naive"] = storm("naive")
			if created := countCreated(answers["naive"]); created >= 2 {
				break
			}
			t.Logf("naive storm %d: the race did not show; running it again", try)
		}
		answers["racefree"] = storm("racefree")
		var rows rowsAnswer
		if status, body := call(t, "GET", srv.URL+"/api/goc/rows?name="+urlQuery(name), "", "", &rows); status != 200 {
			t.Fatalf("rows: %d %s", status, body)
		}
		ids := func(as []gocAnswer) (distinct map[int64]bool, created int) {
			distinct = map[int64]bool{}
			for _, a := range as {
				distinct[a.ID] = true
				if a.Created {
					created++
				}
				if a.Name != name {
					t.Errorf("answer for %q, want %q", a.Name, name)
				}
			}
			return distinct, created
		}
		naiveIDs, naiveCreated := ids(answers["naive"])
		if len(naiveIDs) < 2 || rows.Naive.Rows < 2 || naiveCreated < 2 {
			t.Errorf("naive: %d ids, %d rows, %d created by %d concurrent requests: the race did not show", len(naiveIDs), rows.Naive.Rows, naiveCreated, n)
		}
		if rows.Naive.Rows != naiveCreated {
			t.Errorf("naive: %d rows but %d requests said they created one", rows.Naive.Rows, naiveCreated)
		}
		rfIDs, rfCreated := ids(answers["racefree"])
		if len(rfIDs) != 1 || rfCreated != 1 || rows.Racefree.Rows != 1 {
			t.Errorf("racefree: %d ids, %d created, %d rows; want 1, 1, 1", len(rfIDs), rfCreated, rows.Racefree.Rows)
		}
		t.Logf("%d concurrent requests: naive %d ids / %d rows; racefree %d id / %d row", n, len(naiveIDs), rows.Naive.Rows, len(rfIDs), rows.Racefree.Rows)
	})
}

// countCreated counts the answers that say they created the row.
func countCreated(as []gocAnswer) int {
	n := 0
	for _, a := range as {
		if a.Created {
			n++
		}
	}
	return n
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "%20").Replace(s)
}

// The transfer race through HTTP: the naive transfers lose transfers
// (asserted), racefree's leave exactly what the done transfers add up to.
func TestApp_TransferRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		testdb.Watchdog(t, 2*time.Minute)
		db := e.Open(t)
		srv, _ := mustServer(t, db, 20*time.Millisecond)
		const n = 10
		reqs := make([]transferRequest, n)
		for i := range reqs {
			reqs[i] = transferRequest{From: 1, To: 2, Amount: int64(10 + 7*i)}
			if i%2 == 1 {
				reqs[i].From, reqs[i].To = 2, 1
			}
		}
		want := map[string][2]int64{}
		for _, mode := range []string{"naive", "racefree"} {
			got := make([]transferAnswer, n)
			concurrently(n, func(i int) {
				if status, body := postJSON(t, srv.URL+"/api/transfer/"+mode, reqs[i], &got[i]); status != 200 {
					t.Errorf("%s transfer %d: %d %s", mode, i, status, body)
				}
			})
			w := [2]int64{InitialBalance, InitialBalance}
			for _, a := range got {
				if a.Done {
					w[a.From-1] -= a.Amount
					w[a.To-1] += a.Amount
				}
			}
			want[mode] = w
		}
		var st stateAnswer
		if status, body := call(t, "GET", srv.URL+"/api/transfer/state", "", "", &st); status != 200 {
			t.Fatalf("state: %d %s", status, body)
		}
		if st.Naive.Balances == want["naive"] {
			t.Errorf("naive: balances %v are what the transfers add up to: the race did not show", st.Naive.Balances)
		}
		if st.Racefree.Balances != want["racefree"] || st.Racefree.Total != 2*InitialBalance {
			t.Errorf("racefree: balances %v (total %d), want %v (total %d)", st.Racefree.Balances, st.Racefree.Total, want["racefree"], 2*InitialBalance)
		}
		t.Logf("naive: %v, the transfers add up to %v; racefree: %v", st.Naive.Balances, want["naive"], st.Racefree.Balances)
	})
}

func TestApp_ResetAndInfo(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/reset.db")
	srv, prefix := mustServer(t, db, 0)
	postJSON(t, srv.URL+"/api/goc/naive", gocRequest{Name: "a"}, nil)
	postJSON(t, srv.URL+"/api/goc/racefree", gocRequest{Name: "a"}, nil)
	postJSON(t, srv.URL+"/api/transfer/naive", transferRequest{From: 1, To: 2, Amount: 300}, nil)
	if status, body := call(t, "POST", srv.URL+"/api/reset", "application/json", "{}", nil); status != 200 {
		t.Fatalf("reset: %d %s", status, body)
	}
	tabs, _ := tablesFor(db, prefix)
	if n := countAll(t, db, tabs.qNaiveNames) + countAll(t, db, tabs.qNames); n != 0 {
		t.Errorf("%d names left after reset", n)
	}
	var st stateAnswer
	call(t, "GET", srv.URL+"/api/transfer/state", "", "", &st)
	if st.Naive.Balances != [2]int64{InitialBalance, InitialBalance} || st.Racefree.Total != 2*InitialBalance {
		t.Errorf("after reset: %+v", st)
	}
	var info Info
	if status, body := call(t, "GET", srv.URL+"/api/info", "", "", &info); status != 200 {
		t.Fatalf("info: %d %s", status, body)
	}
	if info.Engine != "sqlite" || !strings.HasPrefix(info.Server, "SQLite") || !strings.Contains(info.Isolation, "serializable") || info.Procs != 1 || info.Requests != DefaultRequests {
		t.Errorf("info: %+v", info)
	}
}

// The page is served from the binary, forbids loading anything from
// elsewhere, and refers to nothing outside the server: it works offline.
func TestApp_PageOffline(t *testing.T) {
	db := testdb.Open(t, "sqlite:"+t.TempDir()+"/page.db")
	srv, _ := mustServer(t, db, 0)
	res, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, f := range []string{"/app.js", "/style.css"} {
		if status, _ := call(t, "GET", srv.URL+f, "", "", nil); status != 200 {
			t.Errorf("GET %s: %d", f, status)
		}
	}
	err = fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(static, path)
		for _, bad := range []string{"http://", "https://", `src="//`, `href="//`, "@import"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q: the page must load nothing from elsewhere", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var size int
	fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if !d.IsDir() {
			b, _ := fs.ReadFile(static, path)
			size += len(b)
		}
		return nil
	})
	if size > 64<<10 {
		t.Errorf("the page weighs %d bytes: keep it small", size)
	}
	t.Logf("the page: %s", fmt.Sprint(size, " bytes"))
}
