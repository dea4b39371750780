package racefree_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/internal/testdb"
)

// recorder keeps the events it observes.
type recorder struct {
	mu     sync.Mutex // guards events
	events []racefree.Event
}

func (r *recorder) Observe(_ context.Context, e racefree.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) snapshot() []racefree.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) count(k racefree.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// TestObserver_LostRaces: every lost race of a storm is observed, with the
// table and the verb, and counted once.
func TestObserver_LostRaces(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		var rec recorder
		ctx := context.Background()
		db, err := racefree.Open(ctx, e.DSN(t), racefree.WithObserver(&rec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() }) // after the table's drop
		table := testdb.CreateTable(t, db, "obs", gocUsersDDL)
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					k := "k" + string(rune('a'+i))
					if _, _, err := racefree.CreateOrGet[gocUser](ctx, db, table, racefree.Values{"email": k}, racefree.Values{"name": "n"}, racefree.Options{NoCoalesce: true}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		lost := racefree.LostRaces(db)
		if got := int64(rec.count(racefree.EventLostRace)); got != lost || lost == 0 {
			t.Fatalf("%d lost-race events for %d lost races", got, lost)
		}
		for _, ev := range rec.events {
			if ev.Kind == racefree.EventLostRace && (ev.Table != table || ev.Verb != "create or get" || ev.Engine != db.Dialect().Name()) {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}

func TestSlogObserver(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "slog.db"), racefree.WithObserver(racefree.SlogObserver(logger)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	racefree.SlogObserver(logger).Observe(ctx, racefree.Event{Kind: racefree.EventTxRetry, Engine: "sqlite", Attempt: 2})
	if out := buf.String(); !strings.Contains(out, "racefree: tx retry") || !strings.Contains(out, "racefree.attempt=2") || !strings.Contains(out, "level=INFO") {
		t.Fatalf("log = %q", out)
	}
	quiet := racefree.SlogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	buf.Reset()
	quiet.Observe(ctx, racefree.Event{Kind: racefree.EventLostRace})
	if buf.Len() != 0 {
		t.Fatalf("a debug event was written at level warn: %q", buf.String())
	}
}

// TestObserver_HitCostsNothing: a hit allocates the same with an observer
// set as without (no event is sent on the hit path, and the check for an
// observer is a nil comparison).
func TestObserver_HitCostsNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	allocs := func(opts ...racefree.DBOption) float64 {
		db, err := racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "hit.db"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		testdb.Exec(t, db, "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)")
		lookup, defaults := racefree.Values{"email": "a@x"}, racefree.Values{"name": "n"}
		hit := func() {
			if _, _, err := racefree.GetOrCreate[gocUser](ctx, db, "hits", lookup, defaults, racefree.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		hit() // plan, create
		return testing.AllocsPerRun(200, hit)
	}
	without := allocs()
	with := allocs(racefree.WithObserver(&recorder{}))
	if with != without {
		t.Fatalf("a hit allocates %.1f times with an observer, %.1f without", with, without)
	}
	t.Logf("a hit allocates %.1f times, with or without an observer", with)
}

// TestObserver_Locks: named, session and table locks and leases report
// their waits and, where a lock outlives its call, how long it was held;
// a Try that finds a lock taken reports it not acquired.
func TestObserver_Locks(t *testing.T) {
	e, _ := testdb.Get("postgres")
	e.Require(t)
	var rec recorder
	ctx := context.Background()
	db, err := racefree.Open(ctx, e.DSN(t), racefree.WithObserver(&rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := racefree.RunInTx(ctx, db, racefree.TxOptions{}, func(ctx context.Context, tx *racefree.Tx) error {
		return racefree.LockNamed(ctx, tx, "obs-named", racefree.LockOptions{})
	}); err != nil {
		t.Fatal(err)
	}
	l, err := racefree.AcquireSessionLock(ctx, db, "obs-session", racefree.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := racefree.AcquireSessionLock(ctx, db, "obs-session", racefree.LockOptions{Wait: racefree.Wait{Try: true}}); !errors.Is(err, racefree.ErrLockNotAcquired) {
		t.Fatalf("second session lock: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lease, err := racefree.AcquireLease(ctx, db, "obs-lease", racefree.LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[racefree.EventKind]int{racefree.EventLockAcquired: 3, racefree.EventLockNotAcquired: 1, racefree.EventLockReleased: 2}
	for k, n := range want {
		if got := rec.count(k); got != n {
			t.Errorf("%v: %d events, want %d (%+v)", k, got, n, rec.events)
		}
	}
	kinds := map[string]bool{}
	for _, ev := range rec.events {
		kinds[ev.LockKind] = true
	}
	if !kinds["named"] || !kinds["session"] || !kinds["lease"] {
		t.Errorf("lock kinds seen: %v", kinds)
	}
}
