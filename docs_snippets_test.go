package racefree_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDocs_SnippetsCompile keeps the Go in README.md and docs/*.md true to
// the API: it type-checks every ```go block against the packages as they
// are in this checkout, so that a renamed or reshaped identifier fails here
// rather than in a reader's editor.
//
// A block is Go of one of two kinds, told apart by parsing: top-level
// declarations (a type, a func with a body), or statements, checked inside a
// function body. Either may begin with imports. Packages the block names
// without importing them (racefree, context, sql, pgxrf, gorm, …: see
// docPackages) are imported for it, and ctx, db, tx and err are declared
// for it as context.Context, *racefree.DB, *racefree.Tx and error. Unused
// variables and imports are not errors here. An HTML comment on the lines
// just above the fence (hidden from readers) changes how the block is
// checked:
//
//	<!-- snippet: given
//	var req struct{ IdempotencyKey string }
//	-->
//
// declares, at package level, what else the block assumes (Go declarations,
// imports allowed); a name it declares replaces the predeclared one.
//
//	<!-- snippet: api [import path] -->
//
// marks an API listing: declarations without bodies, written as inside the
// package (github.com/racefree/racefree unless named). Every function,
// method, type, field, variable and constant it lists must exist there with
// the listed type, a constant with the listed value too, and a struct listed
// with fields must list every exported field.
//
//	<!-- snippet: skip reason -->
//
// leaves unchecked a block that is not Go of this repository — a proposal
// that is not built, code that needs a module no module here requires —
// and says why. A block that should compile and does not is fixed, never
// skipped.
//
// Blocks that import gorm, OpenTelemetry or sqlx are checked in the module
// that requires them (gormrf, otelrf, examples/sqlx).
func TestDocs_SnippetsCompile(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	var blocks []*docBlock
	for _, f := range files {
		bs, err := docBlocks(f)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) < 20 {
		t.Fatalf("found %d ```go blocks in %v; the extraction is broken", len(blocks), files)
	}

	// Parse each block and learn what it imports, then load the packages
	// of each module once.
	fset := token.NewFileSet()
	byModule := map[string][]*docBlock{}
	checked := 0
	for _, b := range blocks {
		if b.skip != "" {
			continue
		}
		if err := b.parse(fset); err != nil {
			var list scanner.ErrorList
			if !errors.As(err, &list) {
				t.Errorf("%s %v", b.where(), err)
			}
			for _, e := range list {
				t.Error(e)
			}
			continue
		}
		dir, err := docModuleDir(b.imports)
		if err != nil {
			t.Errorf("%s %v", b.where(), err)
			continue
		}
		byModule[dir] = append(byModule[dir], b)
		checked++
	}
	for dir, bs := range byModule {
		var paths []string
		for _, b := range bs {
			paths = append(paths, b.imports...)
		}
		imp, err := docImporter(fset, dir, paths)
		if err != nil {
			t.Errorf("load the packages the docs import, in module %s: %v", dir, err)
			continue
		}
		for _, b := range bs {
			for _, err := range b.check(fset, imp) {
				t.Error(err)
			}
		}
	}
	t.Logf("%d of %d blocks checked", checked, len(blocks))
}

// docBlock is one ```go block of a Markdown file, and what the comment
// above it says.
type docBlock struct {
	file string
	line int // the line of the block's first line of code
	code string
	// given holds the declarations of a given comment, from givenLine.
	given     string
	givenLine int
	api       string // the package an API listing describes; "" for code
	skip      string // why the block is not checked

	src     *ast.File // the block as checked: given, block and what they need
	imports []string  // the import paths of src
	renamed map[string]string
}

func (b *docBlock) where() string { return fmt.Sprintf("%s:%d:", b.file, b.line) }

var docMarker = regexp.MustCompile(`^<!-- snippet: (given|api|skip)\b`)

// docBlocks returns the ```go blocks of the Markdown file name.
func docBlocks(name string) ([]*docBlock, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var blocks []*docBlock
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimLeft(lines[i], " \t")
		if fence != "```go" {
			continue
		}
		indent := lines[i][:len(lines[i])-len(fence)]
		b := &docBlock{file: name, line: i + 2, givenLine: i + 2}
		if err := b.readMarkers(lines[:i], indent); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, strings.TrimPrefix(lines[i], indent))
		}
		if i == len(lines) {
			return nil, fmt.Errorf("%s:%d: ```go block never closed", name, b.line-1)
		}
		b.code = strings.Join(code, "\n")
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// readMarkers reads the snippet comments that end on the line just above
// a fence (the last of above), innermost last.
func (b *docBlock) readMarkers(above []string, indent string) error {
	end := len(above)
	for end > 0 && strings.HasSuffix(strings.TrimSpace(above[end-1]), "-->") {
		start := end - 1
		for start >= 0 && !strings.HasPrefix(strings.TrimSpace(above[start]), "<!--") {
			start--
		}
		if start < 0 {
			return fmt.Errorf("unterminated comment above the block")
		}
		first := strings.TrimSpace(above[start])
		m := docMarker.FindStringSubmatch(first)
		if m == nil {
			if strings.HasPrefix(first, "<!-- snippet") {
				return fmt.Errorf("unknown snippet comment %q (given, api or skip)", first)
			}
			return nil
		}
		var text []string
		for _, l := range above[start:end] {
			text = append(text, strings.TrimPrefix(l, indent))
		}
		body := strings.Join(text, "\n")
		body = strings.TrimPrefix(strings.TrimSpace(body), "<!-- snippet: "+m[1])
		body = strings.TrimSpace(strings.TrimSuffix(body, "-->"))
		switch m[1] {
		case "given":
			b.given, b.givenLine = body, start+2
		case "api":
			b.api = body
			if b.api == "" {
				b.api = "github.com/racefree/racefree"
			}
		case "skip":
			if body == "" {
				return fmt.Errorf("a skipped block must say why: <!-- snippet: skip reason -->")
			}
			b.skip = body
		}
		end = start
	}
	return nil
}

// docPackages are the packages a block may name without importing them.
var docPackages = map[string]string{
	"racefree":      "github.com/racefree/racefree",
	"dialect":       "github.com/racefree/racefree/dialect",
	"dialecttest":   "github.com/racefree/racefree/dialect/dialecttest",
	"pgdialect":     "github.com/racefree/racefree/dialect/pgdialect",
	"mysqldialect":  "github.com/racefree/racefree/dialect/mysqldialect",
	"sqlitedialect": "github.com/racefree/racefree/dialect/sqlitedialect",
	"session":       "github.com/racefree/racefree/session",
	"pgxrf":         "github.com/racefree/racefree/pgxrf",
	"gormrf":        "github.com/racefree/racefree/gormrf",
	"otelrf":        "github.com/racefree/racefree/otelrf",
	"bench":         "github.com/racefree/racefree/internal/bench",
	"ledger":        "github.com/racefree/racefree/examples/bank/ledger",
	"ledgerpg":      "github.com/racefree/racefree/examples/sqlcpgx/ledgerpg",
	"ledgerdb":      "github.com/racefree/racefree/examples/sqlc/ledgerdb",
	"cmp":           "cmp",
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"slog":          "log/slog",
	"sql":           "database/sql",
	"driver":        "database/sql/driver",
	"testing":       "testing",
	"time":          "time",
	"pgx":           "github.com/jackc/pgx/v5",
	"pgxpool":       "github.com/jackc/pgx/v5/pgxpool",
	"gorm":          "gorm.io/gorm",
	"postgres":      "gorm.io/driver/postgres",
	"sqlite":        "gorm.io/driver/sqlite",
	"otel":          "go.opentelemetry.io/otel",
	"sdkmetric":     "go.opentelemetry.io/otel/sdk/metric",
	"sqlx":          "github.com/jmoiron/sqlx",
}

// docPredeclared are the variables a block may use without declaring them.
var docPredeclared = [][2]string{
	{"ctx", "context.Context"},
	{"db", "*racefree.DB"},
	{"tx", "*racefree.Tx"},
	{"err", "error"},
}

// apiPrefix renames the declarations of an API listing, which would
// otherwise collide with the package's names it dot-imports.
const apiPrefix = "rfdoc_"

// parse builds the file the block is checked as, and its imports.
func (b *docBlock) parse(fset *token.FileSet) error {
	given, err := parser.ParseFile(fset, "snippet.go", "package snippet\n//line "+b.file+":"+strconv.Itoa(b.givenLine)+"\n"+b.given, parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("the given comment is not Go declarations: %w", err)
	}
	imports, n, body := splitImports(b.code)
	_, perr := parser.ParseFile(token.NewFileSet(), "", "package snippet\n"+b.code, parser.SkipObjectResolution)
	statements := b.api == "" && perr != nil
	var src strings.Builder
	src.WriteString("package snippet\n")
	if b.api != "" {
		fmt.Fprintf(&src, "import . %q\n", b.api)
	}
	src.WriteString("//line " + b.file + ":" + strconv.Itoa(b.line) + "\n" + imports)
	for _, d := range given.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			for _, s := range g.Specs {
				src.WriteString("import " + importSpec(s.(*ast.ImportSpec)) + "\n")
			}
		}
	}
	_, gn, gbody := splitImports(b.given)
	src.WriteString("//line " + b.file + ":" + strconv.Itoa(b.givenLine+gn) + "\n" + gbody + "\n")
	if statements {
		src.WriteString("func _() {\n")
	}
	src.WriteString("//line " + b.file + ":" + strconv.Itoa(b.line+n) + "\n" + body + "\n")
	if statements {
		src.WriteString("}\n")
	}
	text := src.String()
	f, err := parser.ParseFile(fset, "snippet.go", text, 0)
	if err != nil {
		return err
	}
	declared := declaredNames(given)
	for name := range declaredNames(f) {
		declared[name] = true
	}
	// What the block names but neither declares nor imports.
	var extra strings.Builder
	if b.api == "" {
		for _, p := range docPredeclared {
			if !declared[p[0]] {
				fmt.Fprintf(&extra, "var %s %s\n", p[0], p[1])
			}
		}
	}
	need := map[string]bool{}
	for _, id := range f.Unresolved {
		need[id.Name] = true
	}
	if extra.Len() > 0 {
		need["context"], need["racefree"] = true, true
	}
	imported := map[string]bool{}
	for _, s := range f.Imports {
		imported[importName(s)] = true
	}
	var auto strings.Builder
	for name := range need {
		if path, ok := docPackages[name]; ok && !imported[name] && !declared[name] {
			fmt.Fprintf(&auto, "import %q\n", path)
		}
	}
	// Imports come first: the additions go right after the package clause,
	// the variables after the imports.
	text = "package snippet\n" + auto.String() + strings.TrimPrefix(text, "package snippet\n") + "\n" + extra.String()
	if f, err = parser.ParseFile(fset, "snippet.go", text, parser.SkipObjectResolution); err != nil {
		return err
	}
	for _, s := range f.Imports {
		path, _ := strconv.Unquote(s.Path.Value)
		b.imports = append(b.imports, path)
	}
	if b.api != "" {
		b.renamed = renameAPI(f)
	}
	b.src = f
	return nil
}

// splitImports splits the leading import declarations (n lines) off code.
func splitImports(code string) (imports string, n int, rest string) {
	lines := strings.Split(code, "\n")
	for n < len(lines) {
		l := strings.TrimSpace(lines[n])
		switch {
		case l == "" || strings.HasPrefix(l, "//"):
			n++
		case strings.HasPrefix(l, "import ("):
			for n < len(lines) && strings.TrimSpace(lines[n]) != ")" {
				n++
			}
			n++
		case strings.HasPrefix(l, "import "):
			n++
		default:
			return strings.Join(lines[:n], "\n") + "\n", n, strings.Join(lines[n:], "\n")
		}
	}
	return code + "\n", n, ""
}

func importSpec(s *ast.ImportSpec) string {
	if s.Name != nil {
		return s.Name.Name + " " + s.Path.Value
	}
	return s.Path.Value
}

// importName is the name an import declares in its file.
func importName(s *ast.ImportSpec) string {
	if s.Name != nil {
		return s.Name.Name
	}
	path, _ := strconv.Unquote(s.Path.Value)
	for name, p := range docPackages {
		if p == path {
			return name
		}
	}
	return path[strings.LastIndex(path, "/")+1:]
}

// declaredNames returns the package-level names f declares.
func declaredNames(f *ast.File) map[string]bool {
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
					}
				}
			}
		}
	}
	return names
}

// renameAPI prefixes the names an API listing declares, so that they do
// not collide with the package's own, which the listing dot-imports; its
// methods become functions named rfdoc_Type_Method. It returns the
// listing's names by the names they were given.
func renameAPI(f *ast.File) map[string]string {
	renamed := map[string]string{}
	rename := func(id *ast.Ident, as string) {
		renamed[apiPrefix+as] = id.Name
		id.Name = apiPrefix + as
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				rename(d.Name, d.Name.Name)
				continue
			}
			recv := d.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			typ := types.ExprString(recv)
			renamed[apiPrefix+typ+"_"+d.Name.Name] = typ + "." + d.Name.Name
			d.Name.Name = apiPrefix + typ + "_" + d.Name.Name
			d.Recv = nil
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					rename(s.Name, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						rename(n, n.Name)
					}
				}
			}
		}
	}
	return renamed
}

// check type-checks the block and, for an API listing, compares it with
// the package. It returns the errors, at their lines in the Markdown file.
func (b *docBlock) check(fset *token.FileSet, imp types.Importer) []string {
	var errs []string
	conf := types.Config{
		Importer: imp,
		Error: func(err error) {
			msg := err.Error()
			if strings.Contains(msg, "declared and not used") || strings.Contains(msg, "imported and not used") ||
				b.api != "" && strings.Contains(msg, "missing function body") { // a listing has none
				return
			}
			// The listing's own names, longest first (rfdoc_Lease_Token
			// before rfdoc_Lease).
			renamed := slices.SortedFunc(maps.Keys(b.renamed), func(a, b string) int { return len(b) - len(a) })
			for _, as := range renamed {
				msg = strings.ReplaceAll(msg, as, b.renamed[as])
			}
			errs = append(errs, msg)
		},
	}
	info := &types.Info{Defs: map[*ast.Ident]types.Object{}}
	pkg, _ := conf.Check("snippet", fset, []*ast.File{b.src}, info)
	if b.api == "" || len(errs) > 0 {
		return errs
	}
	var target *types.Package
	for _, p := range pkg.Imports() {
		if p.Path() == b.api {
			target = p
		}
	}
	if target == nil {
		target, _ = imp.Import(b.api)
	}
	for _, d := range b.src.Decls {
		for _, id := range apiIdents(d) {
			listed := info.Defs[id]
			name := b.renamed[id.Name]
			if listed == nil || name == "" {
				continue
			}
			if err := compareAPI(target, name, listed); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s", fset.Position(id.Pos()), err))
			}
		}
	}
	return errs
}

// apiIdents returns the names a declaration of an API listing declares.
func apiIdents(d ast.Decl) []*ast.Ident {
	switch d := d.(type) {
	case *ast.FuncDecl:
		return []*ast.Ident{d.Name}
	case *ast.GenDecl:
		var ids []*ast.Ident
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				ids = append(ids, s.Name)
			case *ast.ValueSpec:
				ids = append(ids, s.Names...)
			}
		}
		return ids
	}
	return nil
}

// compareAPI says how listed, the listing's declaration of name ("F", or
// "T.M" for a method), differs from the package's.
func compareAPI(pkg *types.Package, name string, listed types.Object) error {
	q := func(p *types.Package) string {
		if p == pkg || p == listed.Pkg() {
			return ""
		}
		return p.Name()
	}
	typeName, method, isMethod := strings.Cut(name, ".")
	real := pkg.Scope().Lookup(typeName)
	if real == nil || !real.Exported() {
		return fmt.Errorf("%s: no such name in %s", name, pkg.Path())
	}
	if isMethod {
		obj, _, _ := types.LookupFieldOrMethod(real.Type(), true, pkg, method)
		fn, ok := obj.(*types.Func)
		if !ok {
			return fmt.Errorf("%s: no such method in %s", name, pkg.Path())
		}
		return sameSignature(name, listed.Type().(*types.Signature), fn.Type().(*types.Signature), q)
	}
	switch listed := listed.(type) {
	case *types.Func:
		fn, ok := real.(*types.Func)
		if !ok {
			return fmt.Errorf("%s is a %s in %s, not a function", name, kindOf(real), pkg.Path())
		}
		return sameSignature(name, listed.Type().(*types.Signature), fn.Type().(*types.Signature), q)
	case *types.Var:
		if _, ok := real.(*types.Var); !ok {
			return fmt.Errorf("%s is a %s in %s, not a variable", name, kindOf(real), pkg.Path())
		}
		if got, want := types.TypeString(listed.Type(), q), types.TypeString(real.Type(), q); got != want {
			return fmt.Errorf("%s is listed as %s, is %s", name, got, want)
		}
	case *types.Const:
		c, ok := real.(*types.Const)
		if !ok {
			return fmt.Errorf("%s is a %s in %s, not a constant", name, kindOf(real), pkg.Path())
		}
		if got, want := types.TypeString(listed.Type(), q), types.TypeString(c.Type(), q); got != want {
			return fmt.Errorf("%s is listed as %s, is %s", name, got, want)
		}
		if !constant.Compare(listed.Val(), token.EQL, c.Val()) {
			return fmt.Errorf("%s is listed as %v, is %v", name, listed.Val(), c.Val())
		}
	case *types.TypeName:
		tn, ok := real.(*types.TypeName)
		if !ok {
			return fmt.Errorf("%s is a %s in %s, not a type", name, kindOf(real), pkg.Path())
		}
		return sameType(name, listed.Type().Underlying(), tn.Type().Underlying(), q)
	}
	return nil
}

func kindOf(obj types.Object) string {
	switch obj.(type) {
	case *types.Func:
		return "function"
	case *types.Var:
		return "variable"
	case *types.Const:
		return "constant"
	case *types.TypeName:
		return "type"
	}
	return "name"
}

// sameType compares the underlying types of a listed type and the real
// one. A struct listed without fields stands for one whose fields are not
// shown; a struct listed with fields must list every exported field.
func sameType(name string, listed, real types.Type, q types.Qualifier) error {
	ls, ok := listed.(*types.Struct)
	if !ok {
		if lsig, ok := listed.(*types.Signature); ok {
			if rsig, ok := real.(*types.Signature); ok {
				return sameSignature(name, lsig, rsig, q)
			}
		}
		if got, want := types.TypeString(listed, q), types.TypeString(real, q); got != want {
			return fmt.Errorf("type %s is listed as %s, is %s", name, got, want)
		}
		return nil
	}
	rs, ok := real.(*types.Struct)
	if !ok {
		return fmt.Errorf("type %s is listed as a struct, is %s", name, types.TypeString(real, q))
	}
	if ls.NumFields() == 0 {
		return nil
	}
	fields := map[string]*types.Var{}
	for f := range rs.Fields() {
		fields[f.Name()] = f
	}
	var problems []string
	listedNames := map[string]bool{}
	for f := range ls.Fields() {
		listedNames[f.Name()] = true
		rf, ok := fields[f.Name()]
		switch {
		case !ok || !rf.Exported():
			problems = append(problems, fmt.Sprintf("has no field %s", f.Name()))
		case types.TypeString(f.Type(), q) != types.TypeString(rf.Type(), q):
			problems = append(problems, fmt.Sprintf("field %s is listed as %s, is %s", f.Name(), types.TypeString(f.Type(), q), types.TypeString(rf.Type(), q)))
		}
	}
	for f := range rs.Fields() {
		if f.Exported() && !listedNames[f.Name()] {
			problems = append(problems, fmt.Sprintf("field %s %s is not listed", f.Name(), types.TypeString(f.Type(), q)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("type %s: %s", name, strings.Join(problems, "; "))
	}
	return nil
}

// sameSignature compares two signatures, ignoring parameter names and
// receivers.
func sameSignature(name string, listed, real *types.Signature, q types.Qualifier) error {
	if got, want := signatureString(listed, q), signatureString(real, q); got != want {
		return fmt.Errorf("%s is listed as %s, is %s", name, got, want)
	}
	return nil
}

// signatureString prints sig without parameter names.
func signatureString(sig *types.Signature, q types.Qualifier) string {
	var s strings.Builder
	s.WriteString("func")
	if tp := sig.TypeParams(); tp.Len() > 0 {
		var ps []string
		for p := range tp.TypeParams() {
			ps = append(ps, p.Obj().Name()+" "+types.TypeString(p.Constraint(), q))
		}
		s.WriteString("[" + strings.Join(ps, ", ") + "]")
	}
	tuple := func(t *types.Tuple, variadic bool) string {
		var ts []string
		for i := range t.Len() {
			typ := types.TypeString(t.At(i).Type(), q)
			if variadic && i == t.Len()-1 {
				typ = "..." + strings.TrimPrefix(typ, "[]")
			}
			ts = append(ts, typ)
		}
		return "(" + strings.Join(ts, ", ") + ")"
	}
	s.WriteString(tuple(sig.Params(), sig.Variadic()))
	if sig.Results().Len() > 0 {
		s.WriteString(" " + tuple(sig.Results(), false))
	}
	return s.String()
}

// docModuleDir is the module whose requirements provide imports: the core
// module, or the module of the adapter or example that needs more.
func docModuleDir(imports []string) (string, error) {
	dir := "."
	for _, path := range imports {
		var d string
		switch {
		case strings.HasPrefix(path, "gorm.io/"), path == "github.com/racefree/racefree/gormrf":
			d = "gormrf"
		case strings.HasPrefix(path, "go.opentelemetry.io/"), path == "github.com/racefree/racefree/otelrf":
			d = "otelrf"
		case strings.HasPrefix(path, "github.com/jmoiron/sqlx"):
			d = filepath.Join("examples", "sqlx")
		default:
			continue
		}
		if dir != "." && dir != d {
			return "", fmt.Errorf("imports need two modules, %s and %s: split the block", dir, d)
		}
		dir = d
	}
	return dir, nil
}

// docImporter builds the packages paths need in the module at dir (with
// go list -export, as go vet does) and returns an importer reading their
// export data.
func docImporter(fset *token.FileSet, dir string, paths []string) (types.Importer, error) {
	slices.Sort(paths)
	paths = slices.Compact(paths)
	args := append([]string{"list", "-e", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}\t{{with .Error}}{{.}}{{end}}", "--"}, paths...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, cmd.Stderr)
	}
	exports := map[string]string{}
	var problems []string
	for line := range strings.Lines(string(out)) {
		path, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		export, perr, _ := strings.Cut(rest, "\t")
		if perr != "" {
			problems = append(problems, perr)
		}
		exports[path] = export
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		export := exports[path]
		if export == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(export)
	}), nil
}
