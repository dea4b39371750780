package main

import (
	"context"
	"strings"
	"testing"

	"github.com/racefree/racefree/internal/testdb"
)

func TestDoctor(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		dsn := e.DSN(t)
		db := testdb.Open(t, dsn)
		safe := testdb.CreateTable(t, db, "doc_safe", "id {{id}}, email {{text}} NOT NULL, UNIQUE (email)")
		nullable := testdb.CreateTable(t, db, "doc_null", "id {{id}}, email {{text}}, UNIQUE (email)")
		bare := testdb.CreateTable(t, db, "doc_bare", "id {{id}}, email {{text}} NOT NULL, org {{text}}, UNIQUE (email, org)")
		for _, tc := range []struct {
			name, table, lookup string
			want                []string
		}{
			{"Covered", safe, "email", []string{"SAFE: the unique index", "covers the lookup exactly", "NOT NULL", "constraint:"}},
			{"NullableLookup", nullable, "email", []string{"SAFE ONLY WITHOUT NULLS", "treats NULLs as distinct", "when one is"}},
			{"NoCoveringIndex", bare, "email", []string{"NOT SAFE for plain code", "is wider than the lookup", "lock:", "CREATE UNIQUE INDEX"}},
			{"PrimaryKey", bare, "id", []string{"SAFE:", "primary key"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, stdout, stderr := run(t, context.Background(), "doctor", "--dsn", dsn, "--table", tc.table, "--lookup", tc.lookup)
				if code != exitOK || stderr != "" {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				for _, want := range append(tc.want, "isolation:", "racefree:") {
					if !strings.Contains(stdout, want) {
						t.Errorf("output lacks %q:\n%s", want, stdout)
					}
				}
				if e.Name == "sqlite" && (!strings.Contains(stdout, "journal mode:  wal") || !strings.Contains(stdout, "busy timeout:  5000 ms")) {
					t.Errorf("SQLite facts missing:\n%s", stdout)
				}
			})
		}
		t.Run("ConnectionBudget", func(t *testing.T) {
			for _, tc := range []struct {
				procs, pool string
				want        string
			}{
				{"1", "1", "it fits"},
				{"1000", "1000", "over the limit"},
				{"", "", "pass --procs N --pool P"},
			} {
				args := []string{"doctor", "--dsn", dsn, "--table", safe, "--lookup", "email"}
				if tc.procs != "" {
					args = append(args, "--procs", tc.procs, "--pool", tc.pool)
				}
				code, stdout, stderr := run(t, context.Background(), args...)
				if code != exitOK || stderr != "" {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				if e.Name == "sqlite" {
					if strings.Contains(stdout, "connections:") {
						t.Errorf("SQLite has no sessions to count:\n%s", stdout)
					}
					continue
				}
				if !strings.Contains(stdout, "connections:   the server accepts ") || !strings.Contains(stdout, tc.want) {
					t.Errorf("--procs %s --pool %s: output lacks the budget and %q:\n%s", tc.procs, tc.pool, tc.want, stdout)
				}
			}
			code, _, stderr := run(t, context.Background(), "doctor", "--dsn", dsn, "--table", safe, "--lookup", "email", "--procs", "4")
			if code != exitUsage || !strings.Contains(stderr, "go together") {
				t.Errorf("--procs alone: exit %d, stderr %q", code, stderr)
			}
		})
		t.Run("UnknownColumn", func(t *testing.T) {
			code, _, stderr := run(t, context.Background(), "doctor", "--dsn", dsn, "--table", safe, "--lookup", "nope")
			if code != exitFailure || !strings.Contains(stderr, `no column "nope"`) {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			mustOneLine(t, stderr)
		})
	})
}
