// Package cutproxy is a TCP proxy that breaks connections on purpose: the
// lab puts it between worker processes and the database server to show
// what callers see when the network fails — at any moment, and while a
// COMMIT is in flight, the moment whose outcome nobody can know.
//
// A cut resets both sides at once (SO_LINGER 0, then close: an RST, as when
// a router or a server's host drops the connection), so neither side can
// read what was in flight. Three kinds:
//
//   - [KindCut]: a random connection, at a random moment;
//   - [KindBeforeCommit]: the next COMMIT a client sends is held back and
//     the connection cut, so the server never receives it and rolls the
//     transaction back, while the client sent it and cannot know;
//   - [KindAfterCommit]: the next COMMIT is passed on, the server's answer
//     is dropped and the connection cut: the transaction committed and the
//     client cannot know that either.
//
// COMMIT is recognised in the PostgreSQL and MySQL wire protocols, as the
// simple-query message the drivers send for it (pgx: Query "commit";
// go-sql-driver/mysql: COM_QUERY "COMMIT") ending a chunk the client wrote.
package cutproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of cut, as Faults counts them.
const (
	KindCut          = "cut"
	KindBeforeCommit = "cut before COMMIT reached the server"
	KindAfterCommit  = "cut after COMMIT, answer dropped"
)

// armExpiry is how long an armed COMMIT cut waits for a COMMIT before it
// becomes a plain cut.
const armExpiry = time.Second

// Proxy forwards connections from its listening address to an upstream
// address and cuts them on request. It is safe for concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener

	mu      sync.Mutex         // guards the fields below
	pairs   map[*pair]struct{} // live connections
	ports   []int              // local ports of upstream connections, in dial order
	faults  map[string]int64   // cuts made, by kind
	armed   string             // "" or the kind of COMMIT cut waiting for a COMMIT
	armedAt time.Time          // when armed was set
	closed  bool

	commits atomic.Int64 // COMMITs seen passing
	wg      sync.WaitGroup
}

// pair is one proxied connection.
type pair struct {
	client, server net.Conn
	dropReply      atomic.Bool // the next bytes from the server are dropped and the pair cut
	once           sync.Once
}

// reset cuts both sides with an RST.
func (pr *pair) reset() {
	pr.once.Do(func() {
		for _, c := range []net.Conn{pr.client, pr.server} {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
	})
}

// close ends both sides normally (one side ended).
func (pr *pair) close() {
	pr.once.Do(func() {
		pr.client.Close()
		pr.server.Close()
	})
}

// Start listens on a free loopback port and forwards every connection to
// upstream (host:port).
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cutproxy: listen: %w", err)
	}
	p := &Proxy{upstream: upstream, ln: ln, pairs: map[*pair]struct{}{}, faults: map[string]int64{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address clients connect to instead of upstream.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		c.Close() // as if the server refused: the client sees the connection end
		return
	}
	pr := &pair{client: c, server: s}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pr.close()
		return
	}
	p.pairs[pr] = struct{}{}
	if a, ok := s.LocalAddr().(*net.TCPAddr); ok {
		p.ports = append(p.ports, a.Port)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.clientToServer(pr) })
	wg.Go(func() { p.serverToClient(pr) })
	wg.Wait()
	p.mu.Lock()
	delete(p.pairs, pr)
	p.mu.Unlock()
}

func (p *Proxy) clientToServer(pr *pair) {
	defer pr.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := pr.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if IsCommit(chunk) {
				p.commits.Add(1)
				switch p.takeArmed() {
				case KindBeforeCommit:
					p.count(KindBeforeCommit)
					pr.reset()
					return
				case KindAfterCommit:
					pr.dropReply.Store(true)
				}
			}
			if _, werr := pr.server.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) serverToClient(pr *pair) {
	defer pr.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := pr.server.Read(buf)
		if n > 0 {
			if pr.dropReply.Load() {
				// The server answered the COMMIT: it is decided, and the
				// client will never hear how.
				p.count(KindAfterCommit)
				pr.reset()
				return
			}
			if _, werr := pr.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) count(kind string) {
	p.mu.Lock()
	p.faults[kind]++
	p.mu.Unlock()
}

// takeArmed disarms and returns the armed COMMIT cut, if any is waiting.
func (p *Proxy) takeArmed() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.armed
	p.armed = ""
	return k
}

// Cut resets one live connection chosen at random, and reports whether
// there was one.
func (p *Proxy) Cut(rng *rand.Rand) bool {
	p.mu.Lock()
	var victim *pair
	i, n := 0, rng.IntN(max(len(p.pairs), 1))
	for pr := range p.pairs {
		if i == n {
			victim = pr
			break
		}
		i++
	}
	if victim != nil {
		p.faults[KindCut]++
	}
	p.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.reset()
	return true
}

// ArmCommitCut makes the next COMMIT any client sends the moment of a cut:
// before it reaches the server (KindBeforeCommit) or after the server
// answered it (KindAfterCommit).
func (p *Proxy) ArmCommitCut(kind string) error {
	if kind != KindBeforeCommit && kind != KindAfterCommit {
		return fmt.Errorf("cutproxy: arm: unknown kind %q", kind)
	}
	p.mu.Lock()
	p.armed, p.armedAt = kind, time.Now()
	p.mu.Unlock()
	return nil
}

// Commits is the number of COMMITs seen passing through.
func (p *Proxy) Commits() int64 { return p.commits.Load() }

// Faults returns the cuts made so far, by kind.
func (p *Proxy) Faults() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.faults))
	for k, v := range p.faults {
		out[k] = v
	}
	return out
}

// Ports returns the local ports of every upstream connection made, so that
// the server's sessions of this proxy's clients can be found.
func (p *Proxy) Ports() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.ports...)
}

// Live is the number of connections open through the proxy.
func (p *Proxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Chaos cuts at random, rate cuts per second on average (exponential
// gaps), until ctx ends. While COMMITs pass through, half the cuts wait for
// one, before or after it reaches the server in equal shares; a COMMIT cut
// that finds no COMMIT within a second becomes a plain cut.
//
// Chaos never outruns the clients: once COMMITs pass through, a cut is
// made only when one has passed since the last cut, and the cuts a
// stalled ticker missed are dropped, not made in a burst. On a loaded
// machine, where every transaction takes longer, a rate per second would
// otherwise cut nearly every transaction and nothing would commit.
func (p *Proxy) Chaos(ctx context.Context, rate float64, rng *rand.Rand) {
	if rate <= 0 {
		return
	}
	gap := func() time.Duration { return time.Duration(rng.ExpFloat64() / rate * float64(time.Second)) }
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next := time.Now().Add(gap())
	lastCommits := p.Commits()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.expireArm(rng)
		now := time.Now()
		if now.Before(next) {
			continue
		}
		next = now.Add(gap())
		commits := p.Commits()
		if commits > 0 && commits == lastCommits {
			continue // nothing committed since the last cut: let the clients progress
		}
		lastCommits = commits
		p.mu.Lock()
		busy := p.armed != ""
		p.mu.Unlock()
		if !busy && rng.IntN(2) == 0 {
			kind := KindBeforeCommit
			if rng.IntN(2) == 0 {
				kind = KindAfterCommit
			}
			p.ArmCommitCut(kind)
			continue
		}
		p.Cut(rng)
	}
}

// expireArm turns an armed COMMIT cut that waited too long into a plain cut.
func (p *Proxy) expireArm(rng *rand.Rand) {
	p.mu.Lock()
	stale := p.armed != "" && time.Since(p.armedAt) > armExpiry
	if stale {
		p.armed = ""
	}
	p.mu.Unlock()
	if stale {
		p.Cut(rng)
	}
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, pr := range pairs {
		pr.close()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// IsCommit reports whether chunk, bytes a client wrote, ends with a COMMIT
// statement: PostgreSQL's simple Query message 'Q' len "commit\0", or
// MySQL's COM_QUERY packet (length 7, sequence, 0x03) "COMMIT", in any
// letter case.
func IsCommit(chunk []byte) bool {
	n := len(chunk)
	if n >= 12 && chunk[n-12] == 'Q' && binary.BigEndian.Uint32(chunk[n-11:]) == 11 &&
		strings.EqualFold(string(chunk[n-7:n-1]), "commit") && chunk[n-1] == 0 {
		return true
	}
	if n >= 11 && chunk[n-11] == 7 && chunk[n-10] == 0 && chunk[n-9] == 0 && chunk[n-7] == 0x03 &&
		strings.EqualFold(string(chunk[n-6:]), "commit") {
		return true
	}
	return false
}

var _ io.Closer = (*Proxy)(nil)
