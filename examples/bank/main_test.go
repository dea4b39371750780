package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/racefree/racefree/internal/testdb"
)

func TestRun(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		defer testdb.Watchdog(t, 60*time.Second)()
		var stdout, stderr bytes.Buffer
		args := []string{"-dsn", e.DSN(t), "-workers", "16", "-transfers", "20", "-tables", testdb.UniqueName("bankmain")}
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), "ok: money conserved") {
			t.Fatalf("unexpected output:\n%s", stdout.String())
		}
		t.Log(strings.TrimSpace(stdout.String()))
	})
}

func TestRun_BadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-accounts", "1"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d for 1 account, want 2", code)
	}
	if code := run(context.Background(), []string{"-nope"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d for an unknown flag, want 2", code)
	}
}
