package fakedb

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Server plays a database server: it answers each statement with the
// first Reply whose Match the statement contains. A query no reply
// matches fails with an error that quotes it, so a test shows what was
// sent that it did not expect; an Exec no reply matches succeeds.
type Server struct {
	mu      sync.Mutex // guards replies and counts
	replies []Reply
	counts  []int // per reply, how many statements it answered
}

// Reply is the server's answer to the statements containing Match.
type Reply struct {
	// Match is a substring of the statement text.
	Match string
	// Columns and Rows are a query's result.
	Columns []string
	Rows    [][]driver.Value
	// RowsFunc, if set, computes the rows from the statement's arguments
	// instead of Rows.
	RowsFunc func(args []driver.NamedValue) [][]driver.Value
	// Err fails the statement; ErrTimes, if positive, fails only the
	// first ErrTimes statements it matches.
	Err      error
	ErrTimes int
	// Affected is an Exec's rows affected (default 1).
	Affected int64
}

// NewServer returns a server that answers with replies.
func NewServer(replies ...Reply) *Server {
	return &Server{replies: replies, counts: make([]int, len(replies))}
}

// Count returns how many statements the reply matching match (the first
// reply with that Match) answered.
func (s *Server) Count(match string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.replies {
		if r.Match == match {
			return s.counts[i]
		}
	}
	return 0
}

// find returns the reply to query, whether there is one, and the error
// it fails with this time.
func (s *Server) find(query string) (Reply, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.replies {
		if strings.Contains(query, r.Match) {
			s.counts[i]++
			if r.Err != nil && (r.ErrTimes <= 0 || s.counts[i] <= r.ErrTimes) {
				return r, true, r.Err
			}
			return r, true, nil
		}
	}
	return Reply{}, false, nil
}

func (s *Server) query(query string, args []driver.NamedValue) (driver.Rows, error) {
	r, ok, err := s.find(query)
	switch {
	case !ok:
		return nil, fmt.Errorf("fakedb: the server has no reply to %q", query)
	case err != nil:
		return nil, err
	}
	rows := r.Rows
	if r.RowsFunc != nil {
		rows = r.RowsFunc(args)
	}
	return &resultRows{columns: r.Columns, rows: rows}, nil
}

func (s *Server) exec(query string, _ []driver.NamedValue) (driver.Result, error) {
	r, ok, err := s.find(query)
	switch {
	case !ok:
		return driver.RowsAffected(1), nil
	case err != nil:
		return nil, err
	case r.Affected != 0:
		return driver.RowsAffected(r.Affected), nil
	}
	return driver.RowsAffected(1), nil
}

// resultRows are a query's rows.
type resultRows struct {
	columns []string
	rows    [][]driver.Value
	next    int
}

func (r *resultRows) Columns() []string { return r.columns }
func (r *resultRows) Close() error      { return nil }

func (r *resultRows) Next(dest []driver.Value) error {
	if r.next >= len(r.rows) {
		return io.EOF
	}
	copy(dest, r.rows[r.next])
	r.next++
	return nil
}

// beginText is how the log shows a BEGIN.
func beginText(opts driver.TxOptions) string {
	s := "BEGIN"
	if lvl := sql.IsolationLevel(opts.Isolation); lvl != sql.LevelDefault {
		s += " ISOLATION LEVEL " + strings.ToUpper(lvl.String())
	}
	if opts.ReadOnly {
		s += " READ ONLY"
	}
	return s
}
