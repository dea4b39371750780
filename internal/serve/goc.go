package serve

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// nameRow is a row of either names table, as GetOrCreate reads it.
type nameRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	PID  int64  `db:"pid"`
}

// gocRequest is the body of POST /api/goc/{mode}.
type gocRequest struct {
	Name string `json:"name"`
}

// gocAnswer is one get-or-create answer: the row the request got, whether
// it created it, and which processes created it and answered.
type gocAnswer struct {
	Mode       string  `json:"mode"`
	Name       string  `json:"name"`
	ID         int64   `json:"id"`
	Created    bool    `json:"created"`
	CreatedPID int64   `json:"created_pid"`
	PID        int     `json:"pid"`
	MS         float64 `json:"ms"`
}

// handleGetOrCreate is POST /api/goc/{naive|racefree} {"name": "…"}.
func (a *App) handleGetOrCreate(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	mode, err := checkMode(r)
	if err != nil {
		writeBad(w, err)
		return
	}
	var req gocRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeBad(w, err)
		return
	}
	name, err := checkName(req.Name)
	if err != nil {
		writeBad(w, err)
		return
	}
	var row nameRow
	var created bool
	if mode == "naive" {
		row, created, err = a.naiveGetOrCreate(r.Context(), name)
	} else {
		row, created, err = a.racefreeGetOrCreate(r.Context(), name)
	}
	if err != nil {
		a.fail(w, r, mode+" get-or-create", err)
		return
	}
	writeJSON(w, http.StatusOK, gocAnswer{
		Mode: mode, Name: row.Name, ID: row.ID, Created: created, CreatedPID: row.PID,
		PID: pid, MS: float64(time.Since(began).Microseconds()) / 1000,
	})
}

// naiveGetOrCreate is get-or-create as people write it: look for the row,
// and insert one if there is none. Two requests that both look before
// either inserts both insert: the table has no unique constraint to stop
// the second. The think time between the two statements stands for what a
// real handler does between them.
func (a *App) naiveGetOrCreate(ctx context.Context, name string) (nameRow, bool, error) {
	row := nameRow{Name: name}
	err := a.db.SQL().QueryRowContext(ctx, a.q("SELECT id, pid FROM "+a.t.qNaiveNames+" WHERE name = ?"), name).Scan(&row.ID, &row.PID)
	if err == nil {
		return row, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nameRow{}, false, err
	}
	if err := a.think(ctx); err != nil {
		return nameRow{}, false, err
	}
	row.PID = int64(pid)
	ins := "INSERT INTO " + a.t.qNaiveNames + " (name, pid) VALUES (?, ?)"
	if a.db.Dialect().Features().Has(dialect.Returning) {
		err = a.db.SQL().QueryRowContext(ctx, a.q(ins+" RETURNING id"), name, pid).Scan(&row.ID)
	} else {
		var res sql.Result
		if res, err = a.db.SQL().ExecContext(ctx, a.q(ins), name, pid); err == nil {
			row.ID, err = res.LastInsertId()
		}
	}
	if err != nil {
		return nameRow{}, false, err
	}
	return row, true, nil
}

// racefreeGetOrCreate is one call of racefree.GetOrCreate on the table with
// the unique index. The think time comes before the call: GetOrCreate does
// its read and its write inside, with no place for a pause between them,
// and needs none — the unique index decides who creates the row however the
// calls interleave. Pausing first keeps each request as long as its naive
// twin, and lines the calls up to reach the database closer together.
func (a *App) racefreeGetOrCreate(ctx context.Context, name string) (nameRow, bool, error) {
	if err := a.think(ctx); err != nil {
		return nameRow{}, false, err
	}
	return racefree.GetOrCreate[nameRow](ctx, a.db, a.t.names,
		racefree.Values{"name": name}, racefree.Values{"pid": pid}, racefree.Options{})
}

// rowsAnswer is GET /api/goc/rows: the rows each table now holds for a
// name.
type rowsAnswer struct {
	Name     string    `json:"name"`
	Naive    nameCount `json:"naive"`
	Racefree nameCount `json:"racefree"`
	PID      int       `json:"pid"`
}

type nameCount struct {
	Rows int     `json:"rows"`
	IDs  []int64 `json:"ids"`
}

// maxListedIDs bounds the ids listed per table; Rows still counts all.
const maxListedIDs = 100

// handleRows is GET /api/goc/rows?name=….
func (a *App) handleRows(w http.ResponseWriter, r *http.Request) {
	name, err := checkName(r.URL.Query().Get("name"))
	if err != nil {
		writeBad(w, err)
		return
	}
	ans := rowsAnswer{Name: name, PID: pid}
	for _, c := range []struct {
		table string
		dst   *nameCount
	}{{a.t.qNaiveNames, &ans.Naive}, {a.t.qNames, &ans.Racefree}} {
		if *c.dst, err = a.countName(r.Context(), c.table, name); err != nil {
			a.fail(w, r, "count rows", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

func (a *App) countName(ctx context.Context, table, name string) (nameCount, error) {
	rows, err := a.db.SQL().QueryContext(ctx, a.q("SELECT id FROM "+table+" WHERE name = ? ORDER BY id"), name)
	if err != nil {
		return nameCount{}, err
	}
	defer rows.Close()
	c := nameCount{IDs: []int64{}}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nameCount{}, err
		}
		if c.Rows++; c.Rows <= maxListedIDs {
			c.IDs = append(c.IDs, id)
		}
	}
	return c, rows.Err()
}

// handleReset is POST /api/reset: every name deleted, both accounts of
// both transfer tables back at InitialBalance.
// The body must be JSON ({}), so that a form on another site cannot post
// it without the browser asking this server first.
func (a *App) handleReset(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decodeJSON(w, r, &req); err != nil {
		writeBad(w, err)
		return
	}
	if err := reset(r.Context(), a.db, a.t); err != nil {
		a.fail(w, r, "reset", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reset": true, "pid": pid})
}
