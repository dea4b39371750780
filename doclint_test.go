package racefree_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lintedPackages are the packages whose exported identifiers
// TestDocs_ExportedIdentifiersDocumented checks: the public API of the
// module. Every package of the module, internal and commands included, is
// checked for a package comment.
var lintedPackages = []string{
	".",
	"dialect",
	"dialect/pgdialect",
	"dialect/mysqldialect",
	"dialect/sqlitedialect",
	"dialect/dialecttest",
	"session",
	"pgxrf",
}

// lintCommonMethods need no doc comment: their meaning is fixed by the
// interface they implement (golint's list).
var lintCommonMethods = map[string]bool{
	"Error": true, "Read": true, "ServeHTTP": true, "String": true, "Write": true, "Unwrap": true,
}

// TestDocs_ExportedIdentifiersDocumented is golint's documentation check,
// without a dependency: every exported function, method of an exported
// type, type, constant and variable of lintedPackages has a doc comment that
// begins with its name, and every package of the module has a package
// comment. Constants and variables in a parenthesized block are documented
// by a comment on the block (and their own comments are then not checked
// for form), as golint rules.
func TestDocs_ExportedIdentifiersDocumented(t *testing.T) {
	pkgs := mustListPackages(t)
	for _, p := range pkgs {
		files := mustParsePackage(t, p)
		if len(files) == 0 {
			continue
		}
		checkPackageComment(t, p, files)
		if !slices.Contains(lintedPackages, p.rel) {
			continue
		}
		for _, f := range files {
			for _, problem := range lintDocs(f.fset, f.file) {
				t.Error(problem)
			}
		}
	}
	for _, want := range lintedPackages {
		if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.rel == want }) {
			t.Errorf("package ./%s is not in go list ./...", want)
		}
	}
}

// listedPackage is one package of the module as go list reports it.
type listedPackage struct {
	rel  string // directory relative to the module root: ".", "dialect", …
	dir  string
	name string
	// files are the non-test Go files of the build, base names.
	files []string
}

// mustListPackages lists the module's packages with go list ./....
func mustListPackages(tb testing.TB) []listedPackage {
	tb.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}\t{{.Name}}\t{{join .GoFiles \" \"}} {{join .CgoFiles \" \"}}", "./...").Output()
	if err != nil {
		tb.Fatalf("go list ./...: %v", err)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	var pkgs []listedPackage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), "\t", 3)
		if len(fields) != 3 {
			tb.Fatalf("go list: unexpected line %q", sc.Text())
		}
		rel, err := filepath.Rel(root, fields[0])
		if err != nil {
			tb.Fatal(err)
		}
		pkgs = append(pkgs, listedPackage{rel: filepath.ToSlash(rel), dir: fields[0], name: fields[1], files: strings.Fields(fields[2])})
	}
	return pkgs
}

// parsedFile is one parsed source file with its file set.
type parsedFile struct {
	fset *token.FileSet
	file *ast.File
}

// mustParsePackage parses p's non-test files with their comments.
func mustParsePackage(tb testing.TB, p listedPackage) []parsedFile {
	tb.Helper()
	fset := token.NewFileSet()
	var files []parsedFile
	for _, name := range p.files {
		path := filepath.Join(p.dir, name)
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, parsedFile{fset, f})
	}
	return files
}

// checkPackageComment fails unless one file of p has a package comment,
// and that it begins "Package name" (a command's may begin any way: go doc
// shows it as the command's description).
func checkPackageComment(t *testing.T, p listedPackage, files []parsedFile) {
	t.Helper()
	var docs []*ast.CommentGroup
	for _, f := range files {
		if f.file.Doc != nil {
			docs = append(docs, f.file.Doc)
		}
	}
	if len(docs) == 0 {
		t.Errorf("%s: package %s has no package comment", relPos(files[0].fset, files[0].file.Package), p.name)
		return
	}
	if p.name == "main" {
		return
	}
	prefix := "Package " + p.name + " "
	for _, d := range docs {
		if !strings.HasPrefix(d.Text(), prefix) {
			t.Errorf("%s: package comment should begin %q", relPos(files[0].fset, d.Pos()), prefix)
		}
	}
}

// lintDocs returns a "file:line: problem" for every exported identifier of
// f whose doc comment is missing or does not begin with its name.
func lintDocs(fset *token.FileSet, f *ast.File) []string {
	var problems []string
	report := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, relPos(fset, pos)+": "+fmt.Sprintf(format, args...))
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			kind, name := "func", d.Name.Name
			if d.Recv != nil {
				recv := receiverTypeName(d.Recv)
				if !ast.IsExported(recv) || lintCommonMethods[name] {
					continue
				}
				kind, name = "method", recv+"."+d.Name.Name
			}
			checkDoc(report, d.Pos(), d.Doc, kind, name, d.Name.Name)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					doc := s.Doc
					if doc == nil {
						doc = d.Doc
					}
					checkDoc(report, s.Pos(), doc, "type", s.Name.Name, s.Name.Name)
				case *ast.ValueSpec:
					kind := "var"
					if d.Tok == token.CONST {
						kind = "const"
					}
					for _, n := range s.Names {
						if !n.IsExported() {
							continue
						}
						switch {
						case s.Doc == nil && d.Doc == nil:
							checkDoc(report, n.Pos(), nil, kind, n.Name, n.Name)
						case d.Lparen.IsValid() && d.Doc != nil:
							// The block's comment documents its members.
						default:
							doc := s.Doc
							if doc == nil {
								doc = d.Doc
							}
							checkDoc(report, n.Pos(), doc, kind, n.Name, n.Name)
						}
					}
				}
			}
		}
	}
	return problems
}

// checkDoc reports a missing doc comment, or one that does not begin with
// ident followed by a space. An article may come first ("A Lease is …"),
// as golint allows for types; everywhere else too, since it reads the same.
func checkDoc(report func(token.Pos, string, ...any), pos token.Pos, doc *ast.CommentGroup, kind, name, ident string) {
	if doc == nil {
		report(pos, "exported %s %s has no doc comment", kind, name)
		return
	}
	text := doc.Text()
	for _, article := range []string{"A ", "An ", "The "} {
		if rest, ok := strings.CutPrefix(text, article); ok && strings.HasPrefix(rest, ident+" ") {
			return
		}
	}
	if !strings.HasPrefix(text, ident+" ") {
		first, _, _ := strings.Cut(text, "\n")
		report(pos, "doc comment of exported %s %s should begin %q, not %q", kind, name, ident+" ", first)
	}
}

// receiverTypeName is the name of a method's receiver type, without the
// pointer or type parameters.
func receiverTypeName(recv *ast.FieldList) string {
	if recv == nil || len(recv.List) == 0 {
		return ""
	}
	t := recv.List[0].Type
	for {
		switch e := t.(type) {
		case *ast.StarExpr:
			t = e.X
		case *ast.ParenExpr:
			t = e.X
		case *ast.IndexExpr:
			t = e.X
		case *ast.IndexListExpr:
			t = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}

// relPos formats pos as file:line, the file relative to the module root.
func relPos(fset *token.FileSet, pos token.Pos) string {
	p := fset.Position(pos)
	if abs, err := filepath.Abs("."); err == nil {
		if rel, err := filepath.Rel(abs, p.Filename); err == nil {
			p.Filename = rel
		}
	}
	return fmt.Sprintf("%s:%d", p.Filename, p.Line)
}

// TestDocs_LintDocsFlags checks the checker, so that a pass of
// TestDocs_ExportedIdentifiersDocumented means something.
func TestDocs_LintDocsFlags(t *testing.T) {
	const src = `package p

// F does.
func F() {}

func G() {}

// Does H.
func H() {}

type T struct{}

// The U is a type.
type U struct{}

func (T) M() {}

func (T) String() string { return "" }

func (u) M() {}

type u struct{}

// Limits of p.
const (
	A = 1
	B = 2
)

const (
	// C is one.
	C = 1
	D = 2
)

// E: a var.
var E = 1

var v = 1
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	got := lintDocs(fset, f)
	want := []string{
		"p.go:6: exported func G has no doc comment",
		`p.go:9: doc comment of exported func H should begin "H ", not "Does H."`,
		"p.go:11: exported type T has no doc comment",
		"p.go:16: exported method T.M has no doc comment",
		"p.go:33: exported const D has no doc comment",
		`p.go:37: doc comment of exported var E should begin "E ", not "E: a var."`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("lintDocs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// exampleExempt are the methods TestDocs_EveryExportedFuncHasExample does
// not ask an example of: their meaning is fixed by the interface they
// implement (error, fmt.Stringer, errors.Is), and an error type's example
// shows errors.As instead.
var exampleExempt = map[string]bool{"Error": true, "Unwrap": true, "Is": true, "String": true}

// TestDocs_EveryExportedFuncHasExample fails for each exported function and
// method (of an exported type) of the root package without an Example
// function: ExampleF or ExampleF_suffix for a function F, ExampleT_M or
// ExampleT_M_suffix for a method M of T, the names go doc attaches to them.
func TestDocs_EveryExportedFuncHasExample(t *testing.T) {
	var root listedPackage
	for _, p := range mustListPackages(t) {
		if p.rel == "." {
			root = p
		}
	}
	examples := map[string]bool{}
	tests, err := filepath.Glob(filepath.Join(root.dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, path := range tests {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
				examples[fn.Name.Name] = true
			}
		}
	}
	hasExample := func(name string) bool {
		for ex := range examples {
			if ex == name {
				return true
			}
			// A suffix begins with a lower-case letter (go doc's rule).
			if rest, ok := strings.CutPrefix(ex, name+"_"); ok && rest != "" && rest[0] >= 'a' && rest[0] <= 'z' {
				return true
			}
		}
		return false
	}
	for _, f := range mustParsePackage(t, root) {
		for _, decl := range f.file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() {
				continue
			}
			name := fn.Name.Name
			if fn.Recv != nil {
				recv := receiverTypeName(fn.Recv)
				if !ast.IsExported(recv) || exampleExempt[name] {
					continue
				}
				name = recv + "_" + name
			}
			if !hasExample("Example" + name) {
				t.Errorf("%s: %s has no Example%s", relPos(f.fset, fn.Pos()), strings.Replace(name, "_", ".", 1), name)
			}
		}
	}
}
