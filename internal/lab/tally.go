package lab

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A Tally is what a worker process has done so far, kept where it survives
// the process: a small file that the worker maps into its memory (on Unix;
// elsewhere the counts stay in the process and die with it). A worker
// killed with SIGKILL never prints its report, but every count it made up
// to its last instruction is in the file, which the lab reads after the
// death. The exact counts matter: a call that started and never finished
// is a call whose outcome its caller never learned, and the counter
// scenario's invariant must allow for exactly those.
//
// Layout (native byte order, every field 8-byte aligned):
//
//	0   started  calls begun
//	8   ok       calls that returned no error
//	16  failed   calls that returned an error
//	24  nports   client ports recorded (ring of maxPorts)
//	32  ports    [maxPorts]uint32: local TCP ports of the process's connections
//	…   names    [maxNames]entry: named counts (error classes, events)
//
// An entry is count (8), name length (4, written last: an entry with a
// length is complete), sample length (4), name (nameCap), sample (sampleCap).
//
// A Tally is safe for concurrent use by the goroutines of one process.
type Tally struct {
	mem []byte // the mapping, or a plain slice

	mu    sync.Mutex     // guards names while an entry is added
	names map[string]int // name → entry index
}

const (
	tallyHeader = 32
	maxPorts    = 4096
	maxNames    = 64
	nameCap     = 120
	sampleCap   = 376
	entrySize   = 16 + nameCap + sampleCap // 512
	portsOff    = tallyHeader
	namesOff    = portsOff + 4*maxPorts
	tallySize   = namesOff + maxNames*entrySize
)

// Prefixes of a Tally's named counts.
const (
	errorPrefix = "e:" // an error class returned to a caller
	eventPrefix = "v:" // something the lab noted: an ambiguous commit resolved, …
)

// NewTallyFile creates an empty tally file for one worker process.
func NewTallyFile(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "rflab-tally-*")
	if err != nil {
		return "", fmt.Errorf("create tally file: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(tallySize); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("create tally file: %w", err)
	}
	return f.Name(), nil
}

// OpenTally maps the tally file path for writing; an empty path gives a
// Tally in memory only.
func OpenTally(path string) (*Tally, error) {
	if path == "" {
		return &Tally{mem: alignedBuf(tallySize), names: map[string]int{}}, nil
	}
	mem, err := mapFile(path, tallySize)
	if err != nil {
		return nil, fmt.Errorf("open tally %s: %w", path, err)
	}
	return &Tally{mem: mem, names: map[string]int{}}, nil
}

// Close unmaps the tally.
func (t *Tally) Close() error {
	if t == nil {
		return nil
	}
	return unmap(t.mem)
}

// alignedBuf returns n zero bytes that start on an 8-byte boundary.
func alignedBuf(n int) []byte {
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

func (t *Tally) word(off int) *int64 { return (*int64)(unsafe.Pointer(&t.mem[off])) }

// Begin counts a call that starts.
func (t *Tally) Begin() {
	if t != nil {
		atomic.AddInt64(t.word(0), 1)
	}
}

// Done counts a call that finished: ok, or failed with an error of class
// (with its message as the class's sample).
func (t *Tally) Done(class, msg string) {
	if t == nil {
		return
	}
	if class == "" {
		atomic.AddInt64(t.word(8), 1)
		return
	}
	t.add(errorPrefix+class, msg)
	atomic.AddInt64(t.word(16), 1)
}

// Event counts something the lab noted.
func (t *Tally) Event(name string) {
	if t != nil {
		t.add(eventPrefix+name, "")
	}
}

// Port records the local port of a new connection, so that the lab can
// find the process's sessions on the server after it died.
func (t *Tally) Port(port int) {
	if t == nil || port <= 0 {
		return
	}
	i := atomic.AddInt64(t.word(24), 1) - 1
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&t.mem[portsOff+4*int(i%maxPorts)])), uint32(port))
}

// add adds one to the named count, creating it (with its sample) first.
func (t *Tally) add(name, sample string) {
	name = truncate(name, nameCap)
	t.mu.Lock()
	i, ok := t.names[name]
	if !ok {
		i = len(t.names)
		if i >= maxNames-1 { // the last entry takes every name beyond
			name = errorPrefix + "other (too many classes)"
			i, ok = t.names[name]
			if !ok {
				i = maxNames - 1
			}
		}
	}
	if !ok {
		off := namesOff + i*entrySize
		sample = truncate(sample, sampleCap)
		copy(t.mem[off+16:], name)
		copy(t.mem[off+16+nameCap:], sample)
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&t.mem[off+12])), uint32(len(sample)))
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&t.mem[off+8])), uint32(len(name)))
		t.names[name] = i
	}
	t.mu.Unlock()
	atomic.AddInt64(t.word(namesOff+i*entrySize), 1)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TallyCounts is what a tally file holds.
type TallyCounts struct {
	Started, OK, Failed int64
	Errors, Events      map[string]int64
	Samples             map[string]string
	Ports               []int
}

// InFlight is the number of calls begun and never finished: their outcome
// is unknown to their callers.
func (c TallyCounts) InFlight() int64 { return c.Started - c.OK - c.Failed }

// ReadTally reads a tally file, typically after its process died.
func ReadTally(path string) (TallyCounts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TallyCounts{}, fmt.Errorf("read tally: %w", err)
	}
	if len(b) < tallySize {
		return TallyCounts{}, fmt.Errorf("read tally %s: %d bytes, want %d", path, len(b), tallySize)
	}
	return parseTally(b), nil
}

func parseTally(b []byte) TallyCounts {
	ne := binary.NativeEndian
	c := TallyCounts{
		Started: int64(ne.Uint64(b[0:])), OK: int64(ne.Uint64(b[8:])), Failed: int64(ne.Uint64(b[16:])),
		Errors: map[string]int64{}, Events: map[string]int64{}, Samples: map[string]string{},
	}
	n := min(int(ne.Uint64(b[24:])), maxPorts)
	for i := range n {
		if p := int(ne.Uint32(b[portsOff+4*i:])); p > 0 {
			c.Ports = append(c.Ports, p)
		}
	}
	for i := range maxNames {
		off := namesOff + i*entrySize
		nl := int(ne.Uint32(b[off+8:]))
		if nl == 0 || nl > nameCap {
			continue
		}
		sl := min(int(ne.Uint32(b[off+12:])), sampleCap)
		name := string(b[off+16 : off+16+nl])
		count := int64(ne.Uint64(b[off:]))
		switch {
		case len(name) > 2 && name[:2] == errorPrefix:
			c.Errors[name[2:]] += count
			if sl > 0 {
				c.Samples[name[2:]] = string(b[off+16+nameCap : off+16+nameCap+sl])
			}
		case len(name) > 2 && name[:2] == eventPrefix:
			c.Events[name[2:]] += count
		}
	}
	return c
}

// Counts reads the tally's own memory (for a process reporting itself).
func (t *Tally) Counts() TallyCounts { return parseTally(t.mem) }
