package configdoc

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/hookline/hookline"
	"github.com/hookline/hookline/internal/sources"
)

// binarySources are the files whose literal getenv("X") calls a binary runs:
// its cmd/ folder, and the files of package hookline behind its thin main.
var binarySources = map[string][]string{
	Receiver: {"cmd/receiver/*.go", "receiver.go", "internal/tracing/*.go"},
	Worker:   {"cmd/worker/*.go", "worker.go", "worker_admin.go", "internal/tracing/*.go"},
	Hookctl:  {"cmd/hookctl/*.go"},
}

// extra describes a variable beyond what the code says: the description of
// one read outside a struct, or facts a tag cannot hold. Every entry must
// name a variable that the code reads (Load fails otherwise), and every
// variable read outside a struct must have a Doc here or in a struct.
type extra struct {
	Type, Doc, Example string
	// Secret values belong in a secret store.
	Secret bool
	// RequiredBy adds binaries that require the variable.
	RequiredBy []string
	// RequiredUnless is the variable whose presence makes it optional.
	RequiredUnless string
}

// extraEnv is the explicit part of the reference. Keep it small: anything
// a struct tag or doc comment can say belongs there instead.
var extraEnv = map[string]extra{
	"DATABASE_URL": {
		Secret: true, // it usually holds the password
		// hookctl's database commands fail without it.
		RequiredBy: []string{Hookctl},
	},
	"STRIPE_WEBHOOK_SECRET": {
		Type: "list",
		Doc: "The stripe source's endpoint signing secret(s) (whsec_…), comma-separated; a request passes if any one matches, " +
			"so list the new secret first during a rotation (new,old). Used only without HOOKLINE_SOURCES; " +
			"hookctl reads it for `sources` and `send`.",
		Example:        "STRIPE_WEBHOOK_SECRET_FILE=/run/secrets/stripe_webhook_secret",
		Secret:         true,
		RequiredBy:     []string{Receiver},
		RequiredUnless: "HOOKLINE_SOURCES",
	},
	"BANK_WEBHOOK_SECRET": {
		Type: "list",
		Doc: "The bank source's HMAC-SHA256 secret(s) (hex signature in X-Hmac-Signature), comma-separated, new first during a rotation. " +
			"Used only without HOOKLINE_SOURCES; hookctl reads it for `sources` and `send`.",
		Example:        "BANK_WEBHOOK_SECRET_FILE=/run/secrets/bank_webhook_secret",
		Secret:         true,
		RequiredBy:     []string{Receiver},
		RequiredUnless: "HOOKLINE_SOURCES",
	},
	// The Go runtime's own: the receiver's main chooses for them when unset.
	"GOGC": {
		Type: "int",
		Doc: "The Go garbage collector's target heap growth, in percent. When neither GOGC nor GOMEMLIMIT is set, the receiver uses 400 " +
			"(Go's default is 100) under a soft memory limit (see GOMEMLIMIT): it allocates per request while little stays live, and " +
			"collecting four times less often saves 12-20% of its CPU per event (docs/BENCHMARKS.md). Setting either variable leaves " +
			"both to Go, so the deploy files, which set GOMEMLIMIT, set GOGC=400 too. The worker keeps Go's default.",
		Example: "GOGC=400",
	},
	"GOMEMLIMIT": {
		Type: "string",
		Doc: "The Go runtime's soft memory limit: near it, the garbage collector works harder instead of the heap growing. When neither " +
			"GOGC nor GOMEMLIMIT is set, the receiver sets 2 x MAX_BODY_BYTES_IN_FLIGHT, at least 128MiB (128MiB by default), so that " +
			"GOGC=400 spends memory only while the heap is far below it. Set it to about 80% of a container's hard limit, as the deploy files do.",
		Example: "GOMEMLIMIT=400MiB",
	},
	"USER": {
		Type:    "string",
		Doc:     "Who an operator's change is recorded as (throttle, shed, pause, replay audit) unless --by is given; the OS user when unset.",
		Example: "USER=alice",
	},
	// Tracing: the standard OpenTelemetry variables, as internal/tracing
	// reads them.
	"OTEL_TRACES_EXPORTER": {
		Type: "list",
		Doc: "Where spans go: otlp, console (JSON on standard output) or none, comma-separated. Unset, tracing is on (otlp) only if " +
			"OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and off otherwise: no exporter runs and no span is recorded.",
		Example: "OTEL_TRACES_EXPORTER=otlp",
	},
	"OTEL_EXPORTER_OTLP_ENDPOINT": {
		Type: "string",
		Doc: "The OTLP collector's base URL; over HTTP, spans go to its /v1/traces. Setting it turns tracing on. " +
			"The exporter also reads the other standard OTEL_EXPORTER_OTLP_* variables (HEADERS, TIMEOUT, CERTIFICATE, COMPRESSION, and their TRACES_ forms) " +
			"and the batch processor OTEL_BSP_*, from the process environment; headers may carry a collector's credentials, so keep them in the secret store.",
		Example: "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318",
	},
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": {
		Type:    "string",
		Doc:     "The full URL spans are sent to, used as is; it overrides OTEL_EXPORTER_OTLP_ENDPOINT for traces.",
		Example: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://otel-collector:4318/v1/traces",
	},
	"OTEL_EXPORTER_OTLP_PROTOCOL": {
		Type:    "string",
		Doc:     "http/protobuf (the default, port 4318) or grpc (port 4317).",
		Example: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
	},
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": {
		Type:    "string",
		Doc:     "OTEL_EXPORTER_OTLP_PROTOCOL for traces only; it wins over it.",
		Example: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf",
	},
	"OTEL_TRACES_SAMPLER": {
		Type: "string",
		Doc: "Which traces are kept: parentbased_always_on (the default), parentbased_traceidratio, parentbased_always_off, always_on, " +
			"traceidratio or always_off. The worker follows the decision the receiver stored with each job, so an event's trace is kept whole or not at all.",
		Example: "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
	},
	"OTEL_TRACES_SAMPLER_ARG": {
		Type:    "number",
		Doc:     "The ratio of traces kept by the traceidratio samplers, from 0 to 1; default 1.",
		Example: "OTEL_TRACES_SAMPLER_ARG=0.05",
	},
	"OTEL_SERVICE_NAME": {
		Type:    "string",
		Doc:     "The service.name of the spans; default hookline-receiver or hookline-worker. Alone it does not turn tracing on.",
		Example: "OTEL_SERVICE_NAME=hookline-receiver",
	},
	"OTEL_RESOURCE_ATTRIBUTES": {
		Type:    "string",
		Doc:     "More attributes of the process's spans, as key=value pairs, comma-separated, values percent-encoded.",
		Example: "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=production,k8s.namespace.name=hookline",
	},
	"OTEL_SDK_DISABLED": {
		Type:    "bool",
		Doc:     "true turns tracing off whatever else is set.",
		Example: "OTEL_SDK_DISABLED=true",
	},
	"RIVERUI_PASSWORD": {Secret: true},
	"RIVERUI_TOKEN":    {Secret: true},
	"STRIPE_API_KEY":   {Secret: true},
	"GITHUB_TOKEN": {
		Type: "string",
		Doc: "The token `hookctl catchup github` lists a hook's deliveries and asks for redeliveries with: a fine-grained token " +
			"with Webhooks read and write on the repository or organization (docs/SECURITY.md). Never printed.",
		Example: "GITHUB_TOKEN_FILE=/run/secrets/github_token",
		Secret:  true,
	},
}

var envNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{2,}$`)

// envField is one variable as one binary reads it.
type envField struct {
	name, typ, def, doc, example, origin string
	required, fileForm                   bool
}

// loadEnv builds the variables of the reference.
func loadEnv(root string) ([]EnvVar, error) {
	docs, err := packageDocs(root, reflect.TypeFor[hookline.ReceiverConfig]())
	if err != nil {
		return nil, err
	}
	secrets, err := sourcesEnvVars()
	if err != nil {
		return nil, err
	}
	perBinary := map[string][]envField{}
	for bin, cfg := range map[string]any{Receiver: &hookline.ReceiverConfig{}, Worker: &hookline.WorkerConfig{}} {
		if perBinary[bin], err = structVars(cfg, docs); err != nil {
			return nil, err
		}
	}
	for _, bin := range Binaries {
		calls, usesSources, err := scanFiles(root, binarySources[bin])
		if err != nil {
			return nil, err
		}
		perBinary[bin] = append(perBinary[bin], calls...)
		if usesSources {
			perBinary[bin] = append(perBinary[bin], secrets...)
		}
	}
	return merge(perBinary)
}

// structVars returns the variables that config.Load reads into cfg, a
// pointer to a struct with env tags, described by docs (packageDocs).
func structVars(cfg any, docs map[string]string) ([]envField, error) {
	// config.Load reads exactly what env.GetFieldParams lists; reflection
	// adds the Go field behind each, for its type and doc comment.
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return nil, fmt.Errorf("%T: %w", cfg, err)
	}
	t := reflect.TypeOf(cfg).Elem()
	byKey := map[string]reflect.StructField{}
	keys := map[string]string{} // Go field name -> `VARIABLE`, for describe
	for _, f := range reflect.VisibleFields(t) {
		if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" && key != "-" {
			byKey[key], keys[f.Name] = f, "`"+key+"`"
		}
	}
	out := make([]envField, 0, len(params))
	for _, p := range params {
		f, ok := byKey[p.Key]
		if !ok {
			return nil, fmt.Errorf("%s: no field is tagged env:%q (a prefixed or nested struct?): teach configdoc.structVars", t, p.Key)
		}
		origin := t.String() + "." + f.Name
		typ, elem, err := typeName(f.Type)
		if err == nil && elem != nil {
			err = fmt.Errorf("a %s is not one variable", typ)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", origin, err)
		}
		if typ == "list of strings" {
			typ = "list" // comma-separated, config.List
		}
		text, example := splitDoc(docs[t.Name()+"."+f.Name])
		out = append(out, envField{
			name: p.Key, typ: typ, def: p.DefaultValue, required: p.Required,
			doc: describe(text, f.Name, keys), example: example,
			fileForm: true, // config.Load
			origin:   origin,
		})
	}
	return out, nil
}

// sourcesEnvVars returns the variables that sources.FromEnv reads (the
// default sources' secrets), by running it with a getenv that records the
// names it is asked for: no list to keep in step with it.
func sourcesEnvVars() ([]envField, error) {
	var out []envField
	getenv := func(name string) string {
		if base, isFile := strings.CutSuffix(name, FileSuffix); isFile {
			for i := range out {
				out[i].fileForm = out[i].fileForm || out[i].name == base
			}
			return "" // a value and its file both set would be an error
		}
		if !slices.ContainsFunc(out, func(f envField) bool { return f.name == name }) {
			out = append(out, envField{name: name, origin: "sources.FromEnv"})
		}
		return "placeholder"
	}
	if _, err := sources.FromEnv(getenv, time.Minute); err != nil {
		return nil, fmt.Errorf("run sources.FromEnv: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sources.FromEnv reads no variable any more: update configdoc")
	}
	return out, nil
}

// merge folds each binary's view of a variable into one EnvVar.
func merge(perBinary map[string][]envField) ([]EnvVar, error) {
	byName := map[string]*EnvVar{}
	docs := map[string][][2]string{} // name -> (binary, doc)
	var order []string
	for _, bin := range Binaries {
		for _, f := range perBinary[bin] {
			v := byName[f.name]
			if v == nil {
				v = &EnvVar{Name: f.name}
				byName[f.name], order = v, append(order, f.name)
			}
			v.Binaries = addOnce(v.Binaries, bin, true)
			v.FileForm = addOnce(v.FileForm, bin, f.fileForm)
			v.RequiredBy = addOnce(v.RequiredBy, bin, f.required)
			if f.typ != "" {
				if v.Type != "" && v.Type != f.typ {
					return nil, fmt.Errorf("%s has type %s in one place and %s in %s", f.name, v.Type, f.typ, f.origin)
				}
				v.Type = f.typ
			}
			if f.def != "" {
				if v.Default != "" && v.Default != f.def {
					return nil, fmt.Errorf("%s defaults to %q in one place and %q in %s", f.name, v.Default, f.def, f.origin)
				}
				v.Default = f.def
			}
			if f.doc != "" {
				docs[f.name] = append(docs[f.name], [2]string{bin, f.doc})
			}
			if v.Example == "" {
				v.Example = f.example
			}
			v.Origins = append(v.Origins, f.origin)
		}
	}
	for name, x := range extraEnv {
		v := byName[name]
		if v == nil {
			return nil, fmt.Errorf("extraEnv describes %s, which no configuration code reads any more; remove the entry", name)
		}
		v.Secret = x.Secret
		v.RequiredUnless = x.RequiredUnless
		for _, b := range x.RequiredBy {
			if !v.ReadBy(b) {
				return nil, fmt.Errorf("extraEnv says %s requires %s, which it does not read", b, name)
			}
			v.RequiredBy = addOnce(v.RequiredBy, b, true)
		}
		if x.Type != "" {
			v.Type = x.Type
		}
		if x.Doc != "" {
			if len(docs[name]) > 0 {
				return nil, fmt.Errorf("%s has a doc comment in the code and a Doc in extraEnv; keep one", name)
			}
			docs[name] = [][2]string{{"", x.Doc}}
		}
		if x.Example != "" {
			v.Example = x.Example
		}
	}
	out := make([]EnvVar, 0, len(order))
	for _, name := range order {
		v := byName[name]
		v.Doc = mergeDocs(docs[name])
		slices.SortFunc(v.RequiredBy, func(a, b string) int { return slices.Index(Binaries, a) - slices.Index(Binaries, b) })
		v.Required = len(v.RequiredBy) == len(v.Binaries) && v.RequiredUnless == ""
		if v.Example == "" && v.Default != "" {
			v.Example = v.Default
		}
		switch {
		case v.Type == "":
			return nil, fmt.Errorf("%s (read at %s) has no type: add it to extraEnv", name, strings.Join(v.Origins, ", "))
		case v.Doc == "":
			return nil, fmt.Errorf("%s (read at %s) is undocumented: give its field a doc comment, or add it to extraEnv", name, strings.Join(v.Origins, ", "))
		case v.Example == "":
			return nil, fmt.Errorf("%s (read at %s) has no default and no example: add a doc line \"Example: value\"", name, strings.Join(v.Origins, ", "))
		}
		if !strings.HasPrefix(v.Example, name+"=") && !strings.HasPrefix(v.Example, name+FileSuffix+"=") {
			v.Example = name + "=" + v.Example
		}
		out = append(out, *v)
	}
	// Variables read by every binary first, then by pairs, then by one; among
	// equals, in the order of Binaries (v.Binaries is in that order).
	index := func(bins []string) []int {
		out := make([]int, len(bins))
		for i, b := range bins {
			out[i] = slices.Index(Binaries, b)
		}
		return out
	}
	slices.SortStableFunc(out, func(a, b EnvVar) int {
		return cmp.Or(len(b.Binaries)-len(a.Binaries), slices.Compare(index(a.Binaries), index(b.Binaries)))
	})
	return out, nil
}

// addOnce appends bin to bins if add is true and bins lacks it.
func addOnce(bins []string, bin string, add bool) []string {
	if add && !slices.Contains(bins, bin) {
		bins = append(bins, bin)
	}
	return bins
}

// mergeDocs joins the binaries' descriptions of one variable: one if they
// agree, else each prefixed with its binary.
func mergeDocs(docs [][2]string) string {
	if len(docs) == 0 {
		return ""
	}
	same := true
	for _, d := range docs[1:] {
		same = same && d[1] == docs[0][1]
	}
	if same {
		return docs[0][1]
	}
	parts := make([]string, len(docs))
	for i, d := range docs {
		parts[i] = "**" + d[0] + ":** " + d[1]
	}
	return strings.Join(parts, " ")
}

// scanFiles finds, in the non-test Go files that globs (relative to root)
// match, the variables read by literal name: getenv("X"), os.Getenv("X"),
// os.LookupEnv("X") (no X_FILE form), and config.Secrets(getenv, "X"),
// config.Value(getenv, "X") or config.Required(getenv, "X", …) (with it). No type declares these, so this is
// the one place the code is read as text. usesSources reports a call to
// sources.Load or sources.FromEnv.
func scanFiles(root string, globs []string) (fields []envField, usesSources bool, err error) {
	for _, glob := range globs {
		paths, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			return nil, false, fmt.Errorf("list %s: %w", glob, err)
		}
		if len(paths) == 0 {
			return nil, false, fmt.Errorf("no file matches %s: update configdoc.binarySources", glob)
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, false, fmt.Errorf("parse: %w", err)
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return nil, false, fmt.Errorf("scan %s: %w", path, err)
			}
			found, uses := scanFile(fset, f, filepath.ToSlash(rel))
			fields, usesSources = append(fields, found...), usesSources || uses
		}
	}
	return fields, usesSources, nil
}

// scanFile is scanFiles for one parsed file, named rel in origins.
func scanFile(fset *token.FileSet, f *ast.File, rel string) (fields []envField, usesSources bool) {
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn := exprString(call.Fun)
		argIndex, fileForm := -1, false
		switch fn {
		case "getenv", "os.Getenv", "os.LookupEnv", "syscall.Getenv":
			argIndex = 0
		case "config.Secrets", "config.Value", "config.Required":
			argIndex, fileForm = 1, true
		case "sources.Load", "sources.FromEnv":
			usesSources = true
		}
		if argIndex < 0 || len(call.Args) <= argIndex {
			return true
		}
		lit, ok := call.Args[argIndex].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil || !envNameRe.MatchString(name) {
			return true
		}
		fields = append(fields, envField{
			name: name, fileForm: fileForm,
			origin: fmt.Sprintf("%s:%d", rel, fset.Position(lit.Pos()).Line),
		})
		return true
	})
	return fields, usesSources
}

// exprString spells a called function as the code does: getenv, os.Getenv.
func exprString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return exprString(t.X) + "." + t.Sel.Name
	}
	return ""
}
