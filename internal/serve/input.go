package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// badRequest is input the server refuses, with the HTTP status to answer
// and a message for the page.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func badf(status int, format string, args ...any) error {
	return &badRequest{status, fmt.Sprintf(format, args...)}
}

// checkName validates a name and returns it with surrounding spaces
// removed.
func checkName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", badf(http.StatusBadRequest, "the name is not valid UTF-8 text")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", badf(http.StatusBadRequest, "the name is empty: type a name first")
	}
	if n := utf8.RuneCountInString(s); n > MaxNameLen {
		return "", badf(http.StatusBadRequest, "the name is %d characters long; the longest accepted is %d", n, MaxNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", badf(http.StatusBadRequest, "the name contains a control character (%U)", r)
		}
	}
	return s, nil
}

// checkMode reads the {mode} of the path: naive or racefree.
func checkMode(r *http.Request) (string, error) {
	switch m := r.PathValue("mode"); m {
	case "naive", "racefree":
		return m, nil
	default:
		return "", badf(http.StatusNotFound, "unknown mode %q in %s: naive or racefree", m, r.URL.Path)
	}
}

// decodeJSON reads r's body, a JSON object of at most maxBody bytes with no
// field dst lacks, into dst.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return badf(http.StatusUnsupportedMediaType, "malformed request: the body must be JSON (Content-Type: application/json), got %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return badf(http.StatusRequestEntityTooLarge, "malformed request: the body is larger than %d bytes", maxBody)
	case err != nil:
		return badf(http.StatusBadRequest, "malformed request: read the body: %v", err)
	case !utf8.Valid(body):
		// encoding/json would quietly turn the bad bytes into U+FFFD and
		// store a name nobody typed.
		return badf(http.StatusBadRequest, "malformed request: the body is not valid UTF-8 text")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badf(http.StatusBadRequest, "malformed request: the body is empty")
	case errors.As(err, &typeErr):
		return badf(http.StatusBadRequest, "malformed request: %s must be %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case err != nil:
		return badf(http.StatusBadRequest, "malformed request: %v", err)
	}
	if dec.More() {
		return badf(http.StatusBadRequest, "malformed request: more than one JSON value in the body")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int64", "int":
		return "a whole number"
	}
	return "a " + goKind
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is every error answer: the message the page shows, and the
// process that answered.
type errorBody struct {
	Error string `json:"error"`
	PID   int    `json:"pid"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...), PID: pid})
}

// writeBad answers a badRequest error; any other error is the server's
// fault.
func writeBad(w http.ResponseWriter, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeError(w, br.status, "%s", br.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "%v", err)
}
