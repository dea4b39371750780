// Command modproxy writes one tagged version of a module of this
// repository into a directory laid out as a Go module proxy (GOPROXY
// protocol: @v/list, .info, .mod, .zip), so that CI can prove
// `go install github.com/racefree/racefree/cmd/racefree@TAG` works from
// what was tagged before the tag is pushed anywhere. The zip is made by
// golang.org/x/mod/zip from the tagged commit, exactly as a public proxy
// would make it, so files the module may not hold (or a go.mod with a
// replace directive, which go install refuses) fail here first.
//
//	modproxy -repo . -tag v1.0.0 [-dir gormrf] -out /tmp/proxy
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	repo := flag.String("repo", ".", "the repository's root")
	tag := flag.String("tag", "", "the tag to publish, with the module's directory prefix if any (gormrf/v1.0.0)")
	dir := flag.String("dir", "", "the module's directory in the repository; empty for the root module")
	out := flag.String("out", "", "the proxy directory to write into")
	flag.Parse()
	if err := run(*repo, *tag, *dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(repo, tag, dir, out string) error {
	if tag == "" || out == "" {
		return errors.New("both -tag and -out are required")
	}
	version := tag
	if dir != "" {
		version = strings.TrimPrefix(tag, dir+"/")
	}
	modPath := filepath.Join(dir, "go.mod")
	goMod, err := git(repo, "show", tag+":"+filepath.ToSlash(modPath))
	if err != nil {
		return fmt.Errorf("read %s at %s: %w", modPath, tag, err)
	}
	f, err := modfile.ParseLax(modPath, goMod, nil)
	if err != nil {
		return fmt.Errorf("parse %s at %s: %w", modPath, tag, err)
	}
	if f.Module == nil {
		return fmt.Errorf("%s at %s names no module", modPath, tag)
	}
	if len(f.Replace) > 0 {
		return fmt.Errorf("%s at %s has replace directives: go install refuses a module that has them", modPath, tag)
	}
	mv := module.Version{Path: f.Module.Mod.Path, Version: version}
	if err := module.Check(mv.Path, mv.Version); err != nil {
		return fmt.Errorf("check module version: %w", err)
	}
	commitTime, err := git(repo, "log", "-1", "--format=%cI", tag)
	if err != nil {
		return fmt.Errorf("read the time of %s: %w", tag, err)
	}
	when, err := time.Parse(time.RFC3339, strings.TrimSpace(string(commitTime)))
	if err != nil {
		return fmt.Errorf("parse the time of %s: %w", tag, err)
	}

	escaped, err := module.EscapePath(mv.Path)
	if err != nil {
		return fmt.Errorf("escape module path: %w", err)
	}
	vdir := filepath.Join(out, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return fmt.Errorf("create proxy directory: %w", err)
	}
	zf, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		return fmt.Errorf("create module zip: %w", err)
	}
	if err := zip.CreateFromVCS(zf, mv, repo, tag, dir); err != nil {
		zf.Close()
		return fmt.Errorf("zip %s@%s: %w", mv.Path, version, err)
	}
	if err := zf.Close(); err != nil {
		return fmt.Errorf("write module zip: %w", err)
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), goMod, 0o644); err != nil {
		return fmt.Errorf("write go.mod: %w", err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, when.UTC()})
	if err != nil {
		return fmt.Errorf("encode version info: %w", err)
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), info, 0o644); err != nil {
		return fmt.Errorf("write version info: %w", err)
	}
	list, err := os.OpenFile(filepath.Join(vdir, "list"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open version list: %w", err)
	}
	if _, err := fmt.Fprintln(list, version); err != nil {
		list.Close()
		return fmt.Errorf("write version list: %w", err)
	}
	if err := list.Close(); err != nil {
		return fmt.Errorf("write version list: %w", err)
	}
	return nil
}

func git(repo string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
	cmd.Stderr = os.Stderr
	return cmd.Output()
}
