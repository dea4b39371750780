package lab_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
)

func TestParseChaos(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    lab.Chaos
		wantErr string
	}{
		{in: "", want: lab.Chaos{}},
		{in: "kill=2s", want: lab.Chaos{Kill: 2 * time.Second}},
		{in: "cut=3", want: lab.Chaos{Cut: 3}},
		{in: "cut=0.5/s", want: lab.Chaos{Cut: 0.5}},
		{in: " kill=1s , cut=2,restart=20s", want: lab.Chaos{Kill: time.Second, Cut: 2, Restart: 20 * time.Second}},
		{in: "kill=0s", wantErr: "positive duration"},
		{in: "kill=-1s", wantErr: "positive duration"},
		{in: "cut=0", wantErr: "rate of cuts"},
		{in: "cut=fast", wantErr: "rate of cuts"},
		{in: "cut=1e9", wantErr: "rate of cuts"},
		{in: "flood=1", wantErr: "unknown kind"},
		{in: "kill", wantErr: "kind=value"},
	} {
		got, err := lab.ParseChaos(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseChaos(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseChaos(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if again, err := lab.ParseChaos(got.String()); err != nil || again != got {
			t.Errorf("ParseChaos(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

// What a worker counts in its tally is in the file for whoever reads it
// next, as a dead worker's parent does.
func TestTally_RoundTrip(t *testing.T) {
	path, err := lab.NewTallyFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tl, err := lab.OpenTally(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		tl.Begin()
	}
	tl.Done("", "")
	tl.Done("", "")
	tl.Done("deadlock", "Error 1213: Deadlock found")
	tl.Done("deadlock", "a later message is not the sample")
	tl.Event("unknown commit: found in the ledger (had committed)")
	tl.Port(40001)
	tl.Port(40002)
	// Many classes: the tally keeps counting, in one overflow class.
	for i := range 100 {
		tl.Done("other ("+strings.Repeat("x", i)+")", "")
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := lab.ReadTally(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Started != 5 || c.OK != 2 || c.Failed != 102 {
		t.Errorf("started %d, ok %d, failed %d; want 5, 2, 102", c.Started, c.OK, c.Failed)
	}
	var errs int64
	for _, n := range c.Errors {
		errs += n
	}
	if errs != 102 || c.Errors["deadlock"] != 2 || c.Errors["other (too many classes)"] == 0 {
		t.Errorf("errors %v", c.Errors)
	}
	if c.Samples["deadlock"] != "Error 1213: Deadlock found" {
		t.Errorf("sample %q", c.Samples["deadlock"])
	}
	if c.Events["unknown commit: found in the ledger (had committed)"] != 1 {
		t.Errorf("events %v", c.Events)
	}
	if !slices.Equal(c.Ports, []int{40001, 40002}) {
		t.Errorf("ports %v", c.Ports)
	}
	p := lab.PartFromTally(c)
	if p.Ops != 104 || p.OK != 2 || p.InFlight != c.InFlight() {
		t.Errorf("part %+v", p)
	}
	if _, err := lab.ReadTally(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadTally of a missing file succeeded")
	}
}

func TestEngineOf(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u@h/db": "postgres", "POSTGRESQL://u@h/db": "postgres", "mysql://u@h/db": "mysql",
		"mariadb://u@h/db": "mysql", "u:p@tcp(h:3306)/db": "mysql", "u@unix(/s)/db": "mysql",
		"sqlite:x.db": "sqlite", "x.db": "sqlite", "oracle://x": "",
	} {
		if got := lab.EngineOf(dsn); got != want {
			t.Errorf("EngineOf(%q) = %q, want %q", dsn, got, want)
		}
	}
	for _, dsn := range []string{"sqlite:x.db", "postgres://u@/db?host=/var/run/postgresql", "u@unix(/s)/db"} {
		if addr, err := lab.ServerAddr(dsn); err == nil {
			t.Errorf("ServerAddr(%q) = %q, want an error: the proxy needs TCP", dsn, addr)
		}
	}
	if addr, err := lab.ServerAddr("mysql://u@db.example:3307/x"); err != nil || addr != "db.example:3307" {
		t.Errorf("ServerAddr = %q, %v", addr, err)
	}
}
