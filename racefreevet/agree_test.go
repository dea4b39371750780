package racefreevet_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/racefree/racefree/racefreevet"
)

// The analyzer repeats racefree's rules; these tests hold it to the
// library itself. They need the racefree checkout this module sits in
// (the analyzer module does not depend on racefree, so that it can be
// installed on its own) and skip when it is not there, except under
// CI=true.

// repoRoot returns the racefree checkout above this module, or skips.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/racefree/racefree\n") {
		if os.Getenv("CI") == "true" {
			t.Fatal("not inside a racefree checkout (../go.mod is not racefree's): CI runs this module from the repository")
		}
		t.Skip("not inside a racefree checkout: nothing to compare the analyzer with")
	}
	return root
}

// agreeDecls are the row types of the comparison, declared in package
// main of a scratch module that imports the real racefree.
const agreeDecls = "" +
	"type User struct {\n\tID int64 `db:\"id\"`\n\tEmail string `db:\"email,omitempty\"`\n\tNote string\n\tSkip string `db:\"-\"`\n\tplain string `db:\"plain\"`\n}\n" +
	"type Base struct{ ID int64 `db:\"id\"` }\n" +
	"type base struct{ Org int64 `db:\"org\"` }\n" +
	"type WithBase struct {\n\tBase\n\tName string `db:\"name\"`\n}\n" +
	"type OnlyBase struct{ Base }\n" +
	"type UnexportedBase struct{ base }\n" +
	"type PtrBase struct{ *Base }\n" +
	"type NoTags struct{ ID int64 }\n" +
	"type Hidden struct{ id int64 `db:\"id\"` }\n" +
	"type Dashed struct{ ID int64 `db:\"-\"` }\n" +
	"type EmptyTag struct{ Name string `db:\"\"` }\n" +
	"type EmptyOpt struct{ Name string `db:\",omitempty\"` }\n" +
	"type Twice struct {\n\tA string `db:\"email\"`\n\tB string `db:\"email\"`\n}\n" +
	"type TwiceEmbed struct {\n\tBase\n\tOther int64 `db:\"id\"`\n}\n" +
	// An error inside an embedded struct, then another outside it: the
	// library names the last one; so must the analyzer.
	"type BadInner struct{ E string `db:\"\"` }\n" +
	"type TwoProblems struct {\n\tBadInner\n\tX string `db:\"name\"`\n\tY string `db:\"name\"`\n}\n" +
	"type HiddenBase struct{ hiddenBase }\n" +
	"type hiddenBase struct{ secret string `db:\"secret\"` }\n" +
	"type RowMap racefree.Values\n" +
	"type AnyMap map[string]any\n" +
	"type ValuesAlias = racefree.Values\n" +
	"type UserAlias = User\n" +
	"type UserPtr = *User\n" +
	"type Pair[K any] struct{ Key K `db:\"name\"` }\n"

// rowTypes are given to GetOrCreate.
var rowTypes = []string{
	"racefree.Values", "map[string]any", "map[string]interface{}", "ValuesAlias",
	"User", "UserAlias", "WithBase", "OnlyBase", "UnexportedBase", "Pair[string]",
	"struct{ ID int64 `db:\"id\"` }",
	"*User", "UserPtr", "**User", "*racefree.Values", "int", "string", "[]User",
	"map[string]string", "RowMap", "AnyMap",
	"NoTags", "struct{}", "Hidden", "Dashed", "PtrBase", "HiddenBase",
	"EmptyTag", "EmptyOpt", "Twice", "TwiceEmbed", "TwoProblems",
}

// structTypes are given to ValuesOf, by value and by pointer.
var structTypes = []string{
	"User", "UserAlias", "WithBase", "OnlyBase", "UnexportedBase", "Pair[string]",
	"struct{ ID int64 `db:\"id\"` }",
	"NoTags", "struct{}", "Hidden", "Dashed", "PtrBase", "HiddenBase",
	"EmptyTag", "EmptyOpt", "Twice", "TwiceEmbed", "TwoProblems",
}

// otherValues are given to ValuesOf as they are.
var otherValues = []string{
	"racefree.Values{}", "map[string]any{}", "RowMap{}", "42", "new(int)", `"id"`, "nil", "[]User{}",
}

// agreeProgram writes package main: every check on a line of its own,
// run inside a recover (racefree must never panic), printing
// "line<TAB>error" with error "" when racefree accepted the type.
func agreeProgram() (src string, lines map[int]string) {
	var b strings.Builder
	lines = map[int]string{}
	line := 1
	w := func(s string) {
		b.WriteString(s)
		line += strings.Count(s, "\n")
	}
	check := func(what, body string) {
		lines[line] = what
		w(fmt.Sprintf("\tcheck(%d, func() error { %s })\n", line, body))
	}
	w(`package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/racefree/racefree"
	_ "github.com/racefree/racefree/dialect/sqlitedialect"
)

var (
	ctx  = context.Background()
	db   *racefree.DB
	opts racefree.Options
	key  = racefree.Values{"id": 1}
)

`)
	w(agreeDecls)
	w(`
func check(line int, f func() error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Printf("%d\tpanic: %v\n", line, p)
		}
	}()
	err := f()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	fmt.Printf("%d\t%s\n", line, msg)
}

func load[R any]() error {
	_, _, err := racefree.GetOrCreate[R](ctx, db, "t", key, nil, opts)
	return err
}

func main() {
	dir, err := os.MkdirTemp("", "racefreevet-agree")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err = racefree.Open(ctx, "sqlite:"+filepath.Join(dir, "agree.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	// Every column any tag above names, so that only the row type decides.
	if _, err := db.SQL().ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT NOT NULL DEFAULT '', name TEXT NOT NULL DEFAULT '', org INTEGER NOT NULL DEFAULT 0, plain TEXT NOT NULL DEFAULT '', secret TEXT NOT NULL DEFAULT '')"); err != nil {
		panic(err)
	}
`)
	for _, typ := range rowTypes {
		check("GetOrCreate["+typ+"]", fmt.Sprintf("_, _, err := racefree.GetOrCreate[%s](ctx, db, \"t\", key, nil, opts); return err", typ))
	}
	for _, typ := range []string{"User", "*User", "NoTags", "TwoProblems"} {
		check("CreateOrGet["+typ+"]", fmt.Sprintf("_, _, err := racefree.CreateOrGet[%s](ctx, db, \"t\", key, nil, opts); return err", typ))
		check("UpdateOrCreate["+typ+"]", fmt.Sprintf("_, _, err := racefree.UpdateOrCreate[%s](ctx, db, \"t\", key, racefree.Values{\"email\": \"e\"}, opts); return err", typ))
		check("UpdateOrCreateFunc["+typ+"]", fmt.Sprintf("_, _, err := racefree.UpdateOrCreateFunc(ctx, db, \"t\", key, func(*%s) (racefree.Values, error) { return racefree.Values{\"email\": \"f\"}, nil }, opts); return err", typ))
		check("GetOrCreateMany["+typ+"]", fmt.Sprintf("_, err := racefree.GetOrCreateMany[%s](ctx, db, \"t\", []racefree.Item{{Lookup: key}}, opts); return err", typ))
	}
	// Through a generic wrapper, whose instantiation the analyzer checks.
	for _, typ := range []string{"User", "*User", "NoTags", "map[string]any", "RowMap"} {
		check("load["+typ+"]", fmt.Sprintf("return load[%s]()", typ))
	}
	for _, typ := range structTypes {
		check("ValuesOf("+typ+"{})", fmt.Sprintf("_, err := racefree.ValuesOf(%s{}); return err", typ))
		check("ValuesOf(&"+typ+"{})", fmt.Sprintf("_, err := racefree.ValuesOf(&%s{}); return err", typ))
	}
	for _, v := range otherValues {
		check("ValuesOf("+v+")", fmt.Sprintf("_, err := racefree.ValuesOf(%s); return err", v))
	}
	w("}\n")
	return b.String(), lines
}

// TestVerdictsAgreeWithLibrary runs every check of agreeProgram against
// the real racefree on SQLite, runs the analyzer over the same source,
// and requires the same verdict for each: the analyzer reports exactly
// the calls racefree refuses, in racefree's words.
func TestVerdictsAgreeWithLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program against racefree and SQLite")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	src, lines := agreeProgram()
	rootMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The core module's requirements (and go.sum) cover what the program
	// imports, so nothing needs resolving.
	mod := strings.Replace(string(rootMod), "module github.com/racefree/racefree\n", "module racefreevet.test/agree\n", 1) +
		"\nrequire github.com/racefree/racefree v0.0.0-00010101000000-000000000000\n" +
		"\nreplace github.com/racefree/racefree => " + strconv.Quote(root) + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"go.mod": mod, "go.sum": string(sum), "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")

	// The library's verdicts.
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	runtime := map[int]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		n, msg, ok := strings.Cut(sc.Text(), "\t")
		line, err := strconv.Atoi(n)
		if !ok || err != nil {
			t.Fatalf("unexpected output line %q", sc.Text())
		}
		runtime[line] = msg
	}

	// The analyzer's verdicts.
	pkgs, err := packages.Load(&packages.Config{Mode: packages.LoadAllSyntax, Dir: dir, Env: env}, ".")
	if err != nil {
		t.Fatal(err)
	}
	if packages.PrintErrors(pkgs) > 0 {
		t.Fatal("the agreement program does not type-check")
	}
	graph, err := checker.Analyze([]*analysis.Analyzer{racefreevet.Analyzer}, pkgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	static := map[int]string{}
	for _, act := range graph.Roots {
		for _, d := range act.Diagnostics {
			static[act.Package.Fset.Position(d.Pos).Line] = d.Message
		}
	}

	refused := 0
	for line, what := range lines {
		got, ran := runtime[line]
		if !ran {
			t.Errorf("%s: the program printed nothing for line %d", what, line)
			continue
		}
		if strings.HasPrefix(got, "panic: ") {
			t.Errorf("%s: racefree panicked: %s", what, got)
			continue
		}
		diag, reported := static[line]
		switch {
		case got == "" && reported:
			t.Errorf("%s: racefree accepts it, the analyzer reports %q", what, diag)
		case got != "" && !reported:
			t.Errorf("%s: racefree refuses it (%s), the analyzer says nothing", what, got)
		case got != "":
			refused++
			if words := libraryWords(got); !strings.Contains(diag, words) {
				t.Errorf("%s: the analyzer says %q, without racefree's words %q", what, diag, words)
			}
		}
	}
	if refused < 20 || refused == len(lines) {
		t.Errorf("%d of %d checks refused: the table no longer exercises both verdicts", refused, len(lines))
	}
	t.Logf("%d checks, %d refused by racefree and reported by the analyzer, the rest accepted by both", len(lines), refused)
}

// libraryWords is racefree's message without its "racefree: verb table:
// invalid input: " prefix and GetOrCreateMany's " (item N)", with types printed as go/types prints them in
// their own package.
func libraryWords(msg string) string {
	if _, words, ok := strings.Cut(msg, "invalid input: "); ok {
		msg = words
	}
	if i := strings.LastIndex(msg, " (item "); i >= 0 {
		msg = msg[:i]
	}
	return strings.NewReplacer("main.", "", "interface {}", "any", "struct {}", "struct{}").Replace(msg)
}
