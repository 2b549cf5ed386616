package seedcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// --- source scan ---------------------------------------------------------------

// plainCopy is a call that writes or moves a file outside walletstore.
type plainCopy struct {
	File string // relative to the repository root
	Line int
	Call string // "os.WriteFile", …
	// Exempt is set when a comment with notWalletFileMarker on the call's
	// line or the line above says the file written is no wallet file.
	Exempt bool
}

// notWalletFileMarker, in a comment on a call's line or the line above,
// exempts it from the plain-copy criterion: the code states that the file
// it writes is no wallet file (a report, an export).
const notWalletFileMarker = "seed-check: not a wallet file"

func (p plainCopy) String() string { return fmt.Sprintf("%s:%d %s", p.File, p.Line, p.Call) }

// plainCopyCalls are the calls that copy or replace a file without
// walletstore's temp file, fsync, link-or-rename and manifest.
var plainCopyCalls = map[string]map[string]bool{
	"io":      {"Copy": true},
	"os":      {"WriteFile": true, "Rename": true, "Link": true, "Create": true, "OpenFile": true},
	"os/exec": {"Command": true, "CommandContext": true},
}

// writeFlags are the os.OpenFile flags that open a file for writing.
var writeFlags = []string{"O_WRONLY", "O_RDWR", "O_APPEND", "O_CREATE", "O_TRUNC"}

// copyCommands are the programs whose exec copies a file.
var copyCommands = map[string]bool{"cp": true, "/bin/cp": true, "/usr/bin/cp": true}

// walletstoreDir is the one package allowed to make those calls.
const walletstoreDir = "walletstore"

// skipDirs are folders that hold no project code.
var skipDirs = map[string]bool{"bin": true, "testnet-wallets": true, "vendor": true, "node_modules": true, "screenshots": true, "testdata": true}

// scanPlainCopies parses every non-test .go file under root outside
// walletstore and returns how many it parsed and the plain-copy calls in
// them.
func scanPlainCopies(root string) (files int, found []plainCopy, err error) {
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || skipDirs[d.Name()]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".go") || strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		if filepath.ToSlash(filepath.Dir(rel)) == walletstoreDir {
			return nil
		}
		files++
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		calls, err := plainCopiesIn(fset, rel, src)
		found = append(found, calls...)
		return err
	})
	if err != nil {
		return files, found, fmt.Errorf("scan Go code: %w", err)
	}
	return files, found, nil
}

// plainCopiesIn returns the plain-copy calls of one Go file: io.Copy (but
// io.Copy(io.Discard, …), which drains a reader), os.WriteFile, os.Rename,
// os.Link, os.Create, os.OpenFile with a write flag, and exec.Command or
// exec.CommandContext of cp, however io, os and os/exec are imported; those
// marked with notWalletFileMarker are returned as Exempt.
func plainCopiesIn(fset *token.FileSet, name string, src []byte) ([]plainCopy, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	local := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || plainCopyCalls[p] == nil {
			continue
		}
		n := p
		if imp.Name != nil {
			n = imp.Name.Name
		}
		if n != "_" && n != "." {
			local[n] = p
		}
	}
	pkgFunc := func(e ast.Expr) (pkg, fn string) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", ""
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok {
			return "", ""
		}
		return local[id.Name], sel.Sel.Name
	}
	marked := map[int]bool{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if strings.Contains(c.Text, notWalletFileMarker) {
				marked[fset.Position(c.End()).Line] = true
			}
		}
	}
	var out []plainCopy
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		pkg, fn := pkgFunc(call.Fun)
		if !plainCopyCalls[pkg][fn] {
			return true
		}
		if pkg == "io" && len(call.Args) > 0 {
			if p, v := pkgFunc(call.Args[0]); p == "io" && v == "Discard" {
				return true
			}
		}
		if !copyingCall(pkg, fn, call, pkgFunc) {
			return true
		}
		line := fset.Position(call.Pos()).Line
		out = append(out, plainCopy{File: name, Line: line, Call: path.Base(pkg) + "." + fn, Exempt: marked[line] || marked[line-1]})
		return true
	})
	return out, nil
}

// copyingCall tells the calls that only may write (os.OpenFile, exec) from
// those that do: os.OpenFile with a write flag, exec of a copy command.
func copyingCall(pkg, fn string, call *ast.CallExpr, pkgFunc func(ast.Expr) (string, string)) bool {
	switch {
	case pkg == "os" && fn == "OpenFile":
		if len(call.Args) < 2 {
			return false
		}
		write := false
		ast.Inspect(call.Args[1], func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok {
				if p, v := pkgFunc(e); p == "os" && slices.Contains(writeFlags, v) {
					write = true
				}
			}
			return !write
		})
		return write
	case pkg == "os/exec":
		i := 0
		if fn == "CommandContext" {
			i = 1
		}
		if len(call.Args) <= i {
			return false
		}
		lit, ok := call.Args[i].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		name, err := strconv.Unquote(lit.Value)
		return err == nil && copyCommands[name]
	}
	return true
}
