package cutproxy_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/cutproxy"
	"github.com/racefree/racefree/internal/testdb"
)

// echoServer answers every line with the same line, and records what it
// received on got.
func echoServer(t *testing.T) (addr string, got chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					select {
					case got <- line:
					default: // nobody is reading: a test that does not care
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), got
}

func mustStart(t *testing.T, upstream string) *cutproxy.Proxy {
	t.Helper()
	p, err := cutproxy.Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the answer, within a second.
func roundTrip(c net.Conn, msg []byte) ([]byte, error) {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return buf, err
}

// pgCommit and myCommit are COMMIT as pgx and go-sql-driver/mysql send it.
var (
	pgCommit = append([]byte{'Q', 0, 0, 0, 11}, "commit\x00"...)
	myCommit = append([]byte{7, 0, 0, 0, 3}, "COMMIT"...)
)

func TestIsCommit(t *testing.T) {
	pgSelect := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, 13)...)
	pgSelect = append(pgSelect, "SELECT 1;\x00"...)
	tests := []struct {
		name  string
		chunk []byte
		want  bool
	}{
		{"PostgreSQL", pgCommit, true},
		{"PostgreSQLUpper", append([]byte{'Q', 0, 0, 0, 11}, "COMMIT\x00"...), true},
		{"PostgreSQLAfterOther", append(append([]byte{}, pgSelect...), pgCommit...), true},
		{"MySQL", myCommit, true},
		{"MySQLSeq", append([]byte{7, 0, 0, 0, 3}, "commit"...), true},
		{"PostgreSQLSelect", pgSelect, false},
		{"CommitInData", []byte("INSERT INTO t VALUES ('commit')"), false},
		{"MySQLWrongLength", append([]byte{8, 0, 0, 0, 3}, "COMMIT"...), false},
		{"Short", []byte("commit"), false},
		{"Empty", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cutproxy.IsCommit(tc.chunk); got != tc.want {
				t.Errorf("IsCommit(%q) = %v, want %v", tc.chunk, got, tc.want)
			}
		})
	}
}

func TestProxy_Forwards(t *testing.T) {
	up, got := echoServer(t)
	p := mustStart(t, up)
	c := mustDial(t, p.Addr())
	for _, msg := range []string{"hello\n", "again\n"} {
		b, err := roundTrip(c, []byte(msg))
		if err != nil || string(b) != msg {
			t.Fatalf("round trip %q: got %q, %v", msg, b, err)
		}
		if s := <-got; s != msg {
			t.Errorf("server got %q, want %q", s, msg)
		}
	}
	if n := len(p.Ports()); n != 1 {
		t.Errorf("Ports() has %d entries, want 1", n)
	}
	if len(p.Faults()) != 0 {
		t.Errorf("faults %v without any cut", p.Faults())
	}
}

// A cut is an RST: the client's next read fails with ECONNRESET, not a
// clean end of stream.
func TestProxy_CutResets(t *testing.T) {
	up, _ := echoServer(t)
	p := mustStart(t, up)
	c := mustDial(t, p.Addr())
	if _, err := roundTrip(c, []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if !p.Cut(rand.New(rand.NewPCG(1, 2))) {
		t.Fatal("Cut found no connection")
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after cut: %v, want ECONNRESET", err)
	}
	if got := p.Faults()[cutproxy.KindCut]; got != 1 {
		t.Errorf("faults[cut] = %d, want 1", got)
	}
	waitFor(t, func() bool { return p.Live() == 0 })
	if p.Cut(rand.New(rand.NewPCG(1, 2))) {
		t.Error("Cut with no live connection reported a cut")
	}
}

// The two COMMIT cuts, seen from both ends: before, the server never gets
// the COMMIT; after, it gets it and answers, and the client never hears.
func TestProxy_CommitCuts(t *testing.T) {
	for _, tc := range []struct {
		kind       string
		serverSees bool
	}{{cutproxy.KindBeforeCommit, false}, {cutproxy.KindAfterCommit, true}} {
		t.Run(tc.kind, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			received := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				received <- buf[:n]
				c.Write([]byte("C\x00\x00\x00\x0bCOMMIT\x00"))
				time.Sleep(500 * time.Millisecond)
			}()
			p := mustStart(t, ln.Addr().String())
			c := mustDial(t, p.Addr())
			if err := p.ArmCommitCut(tc.kind); err != nil {
				t.Fatal(err)
			}
			_, err = roundTrip(c, pgCommit)
			if err == nil {
				t.Fatal("the client got the answer to its COMMIT")
			}
			select {
			case b := <-received:
				if !tc.serverSees && len(b) > 0 {
					t.Errorf("the server received %q; the COMMIT should have been held back", b)
				}
				if tc.serverSees && string(b) != string(pgCommit) {
					t.Errorf("the server received %q, want the COMMIT", b)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the server's connection did not end")
			}
			if got := p.Faults()[tc.kind]; got != 1 {
				t.Errorf("faults %v, want one %q", p.Faults(), tc.kind)
			}
			if p.Commits() != 1 {
				t.Errorf("Commits() = %d, want 1", p.Commits())
			}
		})
	}
}

func TestProxy_ArmUnknownKind(t *testing.T) {
	up, _ := echoServer(t)
	if err := mustStart(t, up).ArmCommitCut("sometimes"); err == nil {
		t.Error("ArmCommitCut accepted an unknown kind")
	}
}

// Chaos cuts at about the rate asked, and Close ends every connection and
// every goroutine the proxy started.
func TestProxy_ChaosAndClose(t *testing.T) {
	testdb.Watchdog(t, 30*time.Second)
	up, _ := echoServer(t)
	before := runtime.NumGoroutine()
	p, err := cutproxy.Start(up)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Chaos(ctx, 50, rand.New(rand.NewPCG(3, 4))); close(done) }()
	// Clients that reconnect whenever they are cut.
	stop := time.Now().Add(time.Second)
	var clients int
	for time.Now().Before(stop) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			continue // cut while it was being accepted
		}
		clients++
		for time.Now().Before(stop) {
			if _, err := roundTrip(c, []byte("ping\n")); err != nil {
				break
			}
		}
		c.Close()
	}
	cancel()
	<-done
	cuts := p.Faults()[cutproxy.KindCut]
	if cuts < 10 || cuts > 120 {
		t.Errorf("%d cuts in 1s at 50/s", cuts)
	}
	if clients < 2 {
		t.Errorf("%d client connections: the cuts did not reach the clients", clients)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before }, func() string {
		buf := make([]byte, 1<<16)
		return string(buf[:runtime.Stack(buf, true)])
	})
}

func waitFor(t *testing.T, cond func() bool, why ...func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, w := range why {
				t.Log(w())
			}
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
