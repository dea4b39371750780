package lab_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/lab"
	"github.com/racefree/racefree/internal/testdb"
)

// TestMain lets the test binary act as a Fleet's worker processes.
func TestMain(m *testing.M) {
	if os.Getenv(lab.WorkerEnv) == "1" {
		os.Exit(fakeWorker(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeWorker is a worker process that connects to nothing: it sleeps for
// its first argument (a slow start: a loaded machine, a server that forks
// a backend per connection), says it is ready, waits for the start, and
// writes when it was ready and the start it got to the file its second
// argument names, then reports an empty Part.
func fakeWorker(args []string) int {
	if len(args) < 2 {
		return 2
	}
	slow, err := time.ParseDuration(args[0])
	if err != nil {
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	control := lab.WatchStdin(os.Stdin, cancel)
	time.Sleep(slow)
	ready := time.Now()
	start, err := control.Start(os.Stdout)(ctx)
	if err != nil {
		return 1
	}
	b, _ := json.Marshal([2]int64{ready.UnixNano(), start.UnixNano()})
	if os.WriteFile(args[1], b, 0o600) != nil {
		return 1
	}
	if lab.Report(os.Stdout, lab.Part{Ops: 1, OK: 1}) != nil {
		return 1
	}
	return 0
}

// A fleet chooses the common start once its slowest process is ready, and
// gives every process the same one: a process slow to connect no longer
// misses the run it was meant for.
func TestFleet_StartsWhenAllAreReady(t *testing.T) {
	defer testdb.Watchdog(t, time.Minute)()
	dir := t.TempDir()
	const procs = 3
	slow := []time.Duration{0, 50 * time.Millisecond, 1500 * time.Millisecond}
	var started, deadline time.Time
	calls := 0
	f := &lab.Fleet{
		Exe: os.Args[0], Procs: procs, Duration: 200 * time.Millisecond, Dir: dir,
		Args: func(slot, _ int) []string {
			return []string{slow[slot].String(), filepath.Join(dir, "seen"+strconv.Itoa(slot))}
		},
		Started: func(s, d time.Time) { started, deadline = s, d; calls++ },
	}
	res, err := f.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Reported != procs || len(res.Deaths) != 0 {
		t.Fatalf("%d of %d processes reported; deaths %+v", res.Reported, procs, res.Deaths)
	}
	if calls != 1 || deadline.Sub(started) != f.Duration {
		t.Fatalf("Started called %d times, start %v, deadline %v", calls, started, deadline)
	}
	var latestReady time.Time
	for slot := range procs {
		b, err := os.ReadFile(filepath.Join(dir, "seen"+strconv.Itoa(slot)))
		if err != nil {
			t.Fatal(err)
		}
		var seen [2]int64
		if err := json.Unmarshal(b, &seen); err != nil {
			t.Fatal(err)
		}
		ready, start := time.Unix(0, seen[0]), time.Unix(0, seen[1])
		if !start.Equal(started) {
			t.Errorf("process %d got the start %v, the fleet chose %v", slot, start, started)
		}
		if ready.After(latestReady) {
			latestReady = ready
		}
	}
	if !started.After(latestReady) {
		t.Errorf("the start %v came before the slowest process was ready (%v)", started, latestReady)
	}
}
