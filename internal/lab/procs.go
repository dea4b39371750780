package lab

import (
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// WorkerEnv is set to "1" in the environment of every worker process the
// lab starts. A test binary that re-executes itself as the worker checks it
// in TestMain.
const WorkerEnv = "RACEFREE_LAB_WORKER"

// StopGrace is how long a worker process has to finish its calls in flight
// and report after it was told to stop; then it is killed.
const StopGrace = 15 * time.Second

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

func lastLine2(s string) string { return string(lastLine([]byte(s))) }

// Report writes p as the one JSON line Spawn reads from a worker process.
func Report(w io.Writer, p Part) error {
	return json.NewEncoder(w).Encode(p)
}
