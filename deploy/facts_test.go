// What the code says, loaded once from the repository: the configuration
// reference, the receiver's and worker's routes, hookctl's subcommands, the
// directories under cmd/ and the module path.

package deploy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hookline/hookline/internal/configdoc"
	"github.com/hookline/hookline/internal/receiver"
)

type codeFacts struct {
	ref configdoc.Reference
	// routes maps a binary to its GET routes (echo path syntax).
	routes map[string][]string
	// hookctlCommands are hookctl's subcommands (cobra Use: first word).
	hookctlCommands []string
	// cmds are the directories under cmd/.
	cmds []string
	// module is the Go module path.
	module string
}

// addrVar is the variable that sets each server binary's listen address.
var addrVar = map[string]string{
	configdoc.Receiver: "RECEIVER_ADDR",
	configdoc.Worker:   "WORKER_ADDR",
}

// goRuntimeEnv are the variables that the Go runtime of every Hookline
// binary reads itself, before main: they are not in internal/config, so not
// in docs/CONFIGURATION.md, yet a manifest may set them for any binary. Only
// the runtime's tuning knobs; anything else still has to be in the
// reference (a GOMEMLIMIT_FILE, say, is read by nothing).
var goRuntimeEnv = map[string]bool{
	"GOMEMLIMIT": true, // soft memory limit (runtime/debug.SetMemoryLimit)
	"GOGC":       true, // GC target percentage (runtime/debug.SetGCPercent)
	"GOMAXPROCS": true, // OS threads running Go code at once
	"GODEBUG":    true, // runtime and standard library settings
}

var (
	factsOnce sync.Once
	facts     codeFacts
	factsErr  error
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := configdoc.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadFacts(t *testing.T) codeFacts {
	t.Helper()
	root := repoRoot(t)
	factsOnce.Do(func() { facts, factsErr = readFacts(root) })
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return facts
}

func readFacts(root string) (codeFacts, error) {
	var f codeFacts
	var err error
	if f.ref, err = configdoc.Load(root); err != nil {
		return f, err
	}
	for bin, name := range addrVar {
		if v, ok := f.ref.Lookup(name); !ok || !v.ReadBy(bin) {
			return f, fmt.Errorf("%s no longer reads %s: update addrVar", bin, name)
		}
	}
	f.routes = map[string][]string{configdoc.Receiver: receiverRoutes()}
	if f.routes[configdoc.Worker], err = workerRoutes(filepath.Join(root, "worker_admin.go")); err != nil {
		return f, err
	}
	if f.hookctlCommands, err = cobraCommands(filepath.Join(root, "cmd/hookctl")); err != nil {
		return f, err
	}
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		return f, err
	}
	for _, e := range entries {
		if e.IsDir() {
			f.cmds = append(f.cmds, e.Name())
		}
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return f, err
	}
	if m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(mod); m != nil {
		f.module = string(m[1])
	}
	return f, nil
}

// receiverRoutes asks the real receiver router for its GET routes. It is
// built with a metrics handler, as cmd/receiver builds it; nothing is served.
func receiverRoutes() []string {
	e := receiver.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil,
		receiver.Options{Metrics: http.NotFoundHandler()})
	var out []string
	for _, r := range e.Routes() {
		if r.Method == http.MethodGet || r.Method == "POST" {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// workerRoutes reads the routes the worker's admin server registers in
// cmd/worker/admin.go: calls e.GET/e.Any/... with a literal or a package
// constant as the path. The admin handler lives in package main, which a
// test elsewhere cannot import; parsing it keeps cmd/worker unchanged.
// /metrics is registered only with a metrics handler, which cmd/worker
// always passes.
func workerRoutes(file string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	consts := map[string]string{}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	var eval func(ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		case *ast.Ident:
			s, ok := consts[x.Name]
			return s, ok
		case *ast.BinaryExpr:
			a, ok1 := eval(x.X)
			b, ok2 := eval(x.Y)
			return a + b, ok1 && ok2 && x.Op == token.ADD
		}
		return "", false
	}
	var routes []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "newAdmin" {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			method := sel.Sel.Name
			switch method {
			case "GET", "POST", "PUT", "DELETE", "Any":
			default:
				return true
			}
			if p, ok := eval(call.Args[0]); ok {
				if method == "Any" {
					method = "GET"
				}
				routes = append(routes, method+" "+p)
			}
			return true
		})
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("%s: found no routes in newAdmin; update workerRoutes", file)
	}
	return routes, nil
}

// cobraCommands lists the first word of every cobra Use: in dir.
func cobraCommands(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Use" {
				if lit, ok := kv.Value.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, strings.Fields(s + " _")[0])
				}
			}
			return true
		})
	}
	return out, nil
}

// routeMatches reports whether an echo route pattern serves path.
func routeMatches(pattern, p string) bool {
	ps, qs := strings.Split(pattern, "/"), strings.Split(p, "/")
	for i, seg := range ps {
		if seg == "*" {
			return true
		}
		if i >= len(qs) {
			return false
		}
		if strings.HasPrefix(seg, ":") {
			if qs[i] == "" {
				return false
			}
			continue
		}
		if seg != qs[i] {
			return false
		}
	}
	return len(ps) == len(qs)
}

func serves(routes []string, method, p string) bool {
	for _, r := range routes {
		m, pat, _ := strings.Cut(r, " ")
		if m == method && routeMatches(pat, p) {
			return true
		}
	}
	return false
}
