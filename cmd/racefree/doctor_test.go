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
		t.Run("UnknownColumn", func(t *testing.T) {
			code, _, stderr := run(t, context.Background(), "doctor", "--dsn", dsn, "--table", safe, "--lookup", "nope")
			if code != exitFailure || !strings.Contains(stderr, `no column "nope"`) {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			mustOneLine(t, stderr)
		})
	})
}
