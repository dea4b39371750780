package racefreevet_test

import (
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	"github.com/racefree/racefree/racefreevet"
)

// notRowTypes are racefree's generic functions whose type parameter is
// not a row type, with what it is instead.
var notRowTypes = map[string]string{
	"LockRows": "the type of the locked keys",
	"RunOnce":  "the result of the function run once",
}

// loadRacefree loads package racefree's types from dir with the given
// extra environment.
func loadRacefree(t *testing.T, dir string, env ...string) *types.Package {
	t.Helper()
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: dir, Env: append(os.Environ(), env...)}
	pkgs, err := packages.Load(cfg, "github.com/racefree/racefree")
	if err != nil {
		t.Fatal(err)
	}
	if packages.PrintErrors(pkgs) > 0 || len(pkgs) != 1 {
		t.Fatalf("loading racefree from %s failed", dir)
	}
	return pkgs[0].Types
}

// TestVerbsMatchLibrary fails when racefree renames a verb the analyzer
// checks, or adds a generic function nobody has classified: a renamed
// verb would otherwise go unchecked without a sound.
func TestVerbsMatchLibrary(t *testing.T) {
	pkg := loadRacefree(t, repoRoot(t), "GOWORK=off")
	for name, i := range racefreevet.RowVerbs {
		fn, ok := pkg.Scope().Lookup(name).(*types.Func)
		if !ok {
			t.Errorf("racefree has no function %s any more: update rowVerbs (analyzer.go), the stub under testdata and the docs", name)
			continue
		}
		if n := fn.Signature().TypeParams().Len(); i >= n {
			t.Errorf("racefree.%s has %d type parameters; rowVerbs says the row type is number %d", name, n, i)
		}
	}
	for _, name := range pkg.Scope().Names() {
		fn, ok := pkg.Scope().Lookup(name).(*types.Func)
		if !ok || !fn.Exported() || fn.Signature().TypeParams().Len() == 0 {
			continue
		}
		_, row := racefreevet.RowVerbs[name]
		_, other := notRowTypes[name]
		if !row && !other {
			t.Errorf("racefree.%s is generic and unknown to the analyzer: add it to rowVerbs (analyzer.go) if a type parameter is a row type read by newCodec, else to notRowTypes here", name)
		}
	}
}

// TestStubMatchesLibrary keeps the stub under testdata honest: each of
// its exported functions has the real one's signature.
func TestStubMatchesLibrary(t *testing.T) {
	root := repoRoot(t)
	gopath, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	stub := loadRacefree(t, gopath, "GOPATH="+gopath, "GO111MODULE=off", "GOWORK=off")
	lib := loadRacefree(t, root, "GOWORK=off")
	byName := func(p *types.Package) string { return p.Name() }
	for _, name := range stub.Scope().Names() {
		fn, ok := stub.Scope().Lookup(name).(*types.Func)
		if !ok || !fn.Exported() {
			continue
		}
		want, ok := lib.Scope().Lookup(name).(*types.Func)
		if !ok {
			t.Errorf("the stub declares %s, racefree does not", name)
			continue
		}
		if got, want := shape(fn.Signature(), byName), shape(want.Signature(), byName); got != want {
			t.Errorf("stub %s\n\thas  %s\n\twant %s (racefree's)", name, got, want)
		}
	}
}

// shape prints a signature's type parameters, parameter types and result
// types, without names: what a call depends on.
func shape(sig *types.Signature, q types.Qualifier) string {
	var b strings.Builder
	for i := range sig.TypeParams().Len() {
		tp := sig.TypeParams().At(i)
		b.WriteString("[" + tp.Obj().Name() + " " + types.TypeString(tp.Constraint(), q) + "]")
	}
	tuple := func(t *types.Tuple) {
		b.WriteString("(")
		for i := range t.Len() {
			b.WriteString(types.TypeString(t.At(i).Type(), q) + ",")
		}
		b.WriteString(")")
	}
	tuple(sig.Params())
	tuple(sig.Results())
	if sig.Variadic() {
		b.WriteString("...")
	}
	return b.String()
}
