package configdoc

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/sources"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot(".")
	require.NoError(t, err)
	return root
}

// TestConfigurationMDIsCurrent fails when docs/CONFIGURATION.md differs from
// what the code generates, so that `make test` catches drift as well as
// `make docs-check`.
func TestConfigurationMDIsCurrent(t *testing.T) {
	root := repoRoot(t)
	want, err := Generate(root)
	require.NoError(t, err)
	have, err := os.ReadFile(filepath.Join(root, OutputPath))
	require.NoError(t, err)
	if !bytes.Equal(have, want) {
		t.Fatalf("%s is stale: run `make docs` (go generate ./internal/configdoc) and commit it", OutputPath)
	}
}

func TestLoadReadsTheRealCode(t *testing.T) {
	ref, err := Load(repoRoot(t))
	require.NoError(t, err)

	db, ok := ref.Lookup("DATABASE_URL")
	require.True(t, ok)
	require.Equal(t, []string{Receiver, Worker, Hookctl}, db.Binaries)
	require.True(t, db.Required)
	require.True(t, db.Secret)
	require.Equal(t, []string{Receiver, Worker, Hookctl}, db.FileForm, "hookctl reads DATABASE_URL through config.Value, which takes _FILE")

	soft, ok := ref.Lookup("WORKER_SOFT_STOP_TIMEOUT")
	require.True(t, ok)
	require.Equal(t, "duration", soft.Type)
	require.Equal(t, "20s", soft.Default)
	require.Equal(t, []string{Worker}, soft.Binaries)

	stripe, ok := ref.Lookup("STRIPE_WEBHOOK_SECRET")
	require.True(t, ok)
	require.False(t, stripe.Required)
	require.Equal(t, []string{Receiver}, stripe.RequiredBy)
	require.Equal(t, "HOOKLINE_SOURCES", stripe.RequiredUnless)
	require.Equal(t, []string{Receiver, Hookctl}, stripe.FileForm)

	_, viaFile, ok := ref.Resolve(Receiver, "STRIPE_WEBHOOK_SECRET_FILE")
	require.True(t, ok)
	require.True(t, viaFile)
	_, _, ok = ref.Resolve(Hookctl, "HOOKLINE_SOURCES_FILE")
	require.False(t, ok, "hookctl reads HOOKLINE_SOURCES with getenv, without _FILE")
	_, _, ok = ref.Resolve(Worker, "RECEIVER_ADDR")
	require.False(t, ok, "the worker does not read RECEIVER_ADDR")

	for _, v := range ref.Env {
		require.NotEmpty(t, v.Doc, v.Name)
		require.NotEmpty(t, v.Type, v.Name)
		require.True(t, strings.HasPrefix(v.Example, v.Name+"=") || strings.HasPrefix(v.Example, v.Name+"_FILE="), v.Example)
	}

	paths := map[string]SourceField{}
	for _, f := range ref.SourceFields {
		paths[f.Path] = f
	}
	require.Contains(t, paths, "sources[].hmac.header")
	require.Contains(t, paths, "sources[].secrets[].env")
	require.Equal(t, "5m", paths["sources[].tolerance"].Default)
	require.Equal(t, "sha256", paths["sources[].hmac.algorithm"].Default)
	require.Equal(t, "400", paths["sources[].failure_status"].Default)
	require.Equal(t, "duration", paths["sources[].tolerance"].Type)
	require.Equal(t, "mapping", paths["sources[].hmac"].Type)
	require.Equal(t, paths["sources[].id"].Doc, paths["sources[].event_type"].Doc, "event_type shares id's comment")
}

// TestExtraEnvNamesAppearInCode: every variable the explicit table
// describes is still spelled, as a string literal, in the code of the
// binaries, in internal/sources or internal/tracing (Load also checks this, through its scan).
func TestExtraEnvNamesAppearInCode(t *testing.T) {
	root := repoRoot(t)
	var code bytes.Buffer
	for _, glob := range []string{"*.go", "cmd/*/*.go", "internal/sources/*.go", "internal/config/*.go", "internal/tracing/*.go"} {
		paths, err := filepath.Glob(filepath.Join(root, glob))
		require.NoError(t, err)
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			code.Write(b)
		}
	}
	for name := range extraEnv {
		quoted := `"` + name + `"`
		tagged := `env:"` + name
		require.True(t, bytes.Contains(code.Bytes(), []byte(quoted)) || bytes.Contains(code.Bytes(), []byte(tagged)),
			"extraEnv describes %s, which no code spells any more", name)
	}
}

// TestExampleSourcesIsValid: the example file the reference shows is one the
// receiver accepts, read strictly and built with its secrets present.
func TestExampleSourcesIsValid(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "stripe_previous")
	require.NoError(t, os.WriteFile(secretFile, []byte("whsec_previous\n"), 0o600))
	text := strings.ReplaceAll(exampleSources, "/run/secrets/stripe_previous", secretFile)
	require.NotEqual(t, exampleSources, text)
	path := filepath.Join(dir, "sources.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))

	f, err := sources.ReadFile(path)
	require.NoError(t, err)
	env := map[string]string{
		"STRIPE_WEBHOOK_SECRET": "whsec_current",
		"GITHUB_WEBHOOK_SECRET": "gh",
		"ACME_WEBHOOK_SECRET":   "acme",
	}
	_, sums, err := sources.Build(func(k string) string { return env[k] }, f.Sources)
	require.NoError(t, err)
	require.Len(t, sums, 3)
}

func parseSrc(t *testing.T, src string) (*token.FileSet, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.ParseComments|parser.SkipObjectResolution)
	require.NoError(t, err)
	return fset, f
}

// appConfig and the types below stand in for a binary's Config struct.
type appConfig struct {
	Addr   string        `env:"APP_ADDR" envDefault:":8080"`
	URL    string        `env:"APP_URL,required,notEmpty"`
	D      time.Duration `env:"APP_D" envDefault:"5s"`
	L      slog.Level    `env:"APP_L"`
	S      []string      `env:"APP_S"`
	N      int64         `env:"APP_N"`
	Logger *slog.Logger  `env:"-"`
	J      string        `json:"j"`
	hidden int
}

type mapConfig struct {
	M map[string]string `env:"APP_M"`
}

func TestStructVars(t *testing.T) {
	docs := map[string]string{
		"appConfig.Addr": "Addr is the listen address.\nExample: :9000\n",
		"appConfig.URL":  "URL is the database. Addr serves it.\n",
		"appConfig.S":    "S is batch or single.\n",
	}
	got, err := structVars(&appConfig{}, docs)
	require.NoError(t, err)
	const o = "configdoc.appConfig."
	require.Equal(t, []envField{
		{name: "APP_ADDR", typ: "string", def: ":8080", doc: "The listen address.", example: ":9000", fileForm: true, origin: o + "Addr"},
		{name: "APP_URL", typ: "string", doc: "The database. `APP_ADDR` serves it.", required: true, fileForm: true, origin: o + "URL"},
		{name: "APP_D", typ: "duration", def: "5s", fileForm: true, origin: o + "D"},
		{name: "APP_L", typ: "log level", fileForm: true, origin: o + "L"},
		// A description that is a list of values keeps its key.
		{name: "APP_S", typ: "list", doc: "`APP_S` is batch or single.", fileForm: true, origin: o + "S"},
		{name: "APP_N", typ: "integer", fileForm: true, origin: o + "N"},
	}, got, "env:\"-\" and untagged fields are not variables")

	_, err = structVars(&mapConfig{}, nil)
	require.ErrorContains(t, err, "unsupported type map[string]string")
}

func TestSourcesEnvVars(t *testing.T) {
	got, err := sourcesEnvVars()
	require.NoError(t, err)
	require.Equal(t, []envField{
		{name: "STRIPE_WEBHOOK_SECRET", fileForm: true, origin: "sources.FromEnv"},
		{name: "BANK_WEBHOOK_SECRET", fileForm: true, origin: "sources.FromEnv"},
	}, got)
}

func TestPackageDocs(t *testing.T) {
	docs, err := packageDocs(repoRoot(t), reflect.TypeFor[sources.File]())
	require.NoError(t, err)
	require.Equal(t, "Name is the path segment (/api/webhooks/<name>) and the inbox key.\n", docs["Config.Name"])
	require.Equal(t, docs["Config.ID"], docs["Config.EventType"], "EventType shares ID's comment")
	require.Empty(t, docs["Locator.Header"])

	_, err = packageDocs(repoRoot(t), reflect.TypeFor[strings.Builder]())
	require.ErrorContains(t, err, "is not in module")
}

func TestScanFile(t *testing.T) {
	src := `package main
func f(getenv func(string) string) {
	_ = getenv("APP_URL")
	_ = os.Getenv("HOME")
	_, _ = os.LookupEnv("APP_LOOKUP")
	_, _ = config.Secrets(getenv, "APP_SECRET")
	name := "APP_" + "DYNAMIC"
	_ = getenv(name)
	_ = getenv("not a name")
	_, _, _ = sources.Load(getenv, "", 0)
}
`
	fset, f := parseSrc(t, src)
	got, uses := scanFile(fset, f, "cmd/x/x.go")
	require.True(t, uses)
	require.Equal(t, []envField{
		{name: "APP_URL", origin: "cmd/x/x.go:3"},
		{name: "HOME", origin: "cmd/x/x.go:4"},
		{name: "APP_LOOKUP", origin: "cmd/x/x.go:5"},
		{name: "APP_SECRET", fileForm: true, origin: "cmd/x/x.go:6"},
	}, got)

	fset, f = parseSrc(t, "package main\nfunc f() { _ = getenv }\n")
	got, uses = scanFile(fset, f, "y.go")
	require.False(t, uses)
	require.Empty(t, got)
}

func TestMerge(t *testing.T) {
	base := func() map[string][]envField {
		// Every extraEnv name must be read, or merge refuses the table.
		m := map[string][]envField{}
		for name := range extraEnv {
			doc := "d" // but not where extraEnv has the Doc
			if extraEnv[name].Doc != "" {
				doc = ""
			}
			m[Hookctl] = append(m[Hookctl], envField{name: name, typ: "string", doc: doc, example: "v", origin: "t"})
			m[Receiver] = append(m[Receiver], envField{name: name, typ: "string", origin: "t"})
		}
		return m
	}
	t.Run("the binaries' views fold into one variable", func(t *testing.T) {
		m := base()
		m[Receiver] = append(m[Receiver], envField{name: "APP_X", typ: "integer", def: "1", doc: "x", required: true, fileForm: true, origin: "r"})
		m[Worker] = append(m[Worker], envField{name: "APP_X", typ: "integer", def: "1", doc: "x", required: true, fileForm: true, origin: "w"})
		vars, err := merge(m)
		require.NoError(t, err)
		var x EnvVar
		for _, v := range vars {
			if v.Name == "APP_X" {
				x = v
			}
		}
		require.Equal(t, []string{Receiver, Worker}, x.Binaries)
		require.True(t, x.Required)
		require.Equal(t, "x", x.Doc)
		require.Equal(t, "APP_X=1", x.Example, "the default is the example")
	})
	t.Run("different docs are labelled by binary", func(t *testing.T) {
		m := base()
		m[Receiver] = append(m[Receiver], envField{name: "APP_X", typ: "integer", def: "1", doc: "r"})
		m[Worker] = append(m[Worker], envField{name: "APP_X", typ: "integer", def: "1", doc: "w"})
		vars, err := merge(m)
		require.NoError(t, err)
		for _, v := range vars {
			if v.Name == "APP_X" {
				require.Equal(t, "**receiver:** r **worker:** w", v.Doc)
			}
		}
	})
	for _, tt := range []struct {
		name    string
		add     map[string][]envField
		drop    string
		wantErr string
	}{
		{"conflicting types", map[string][]envField{
			Receiver: {{name: "APP_X", typ: "integer", doc: "x", def: "1"}},
			Worker:   {{name: "APP_X", typ: "duration", doc: "x", def: "1", origin: "w.go"}},
		}, "", "has type integer in one place and duration in w.go"},
		{"conflicting defaults", map[string][]envField{
			Receiver: {{name: "APP_X", typ: "integer", doc: "x", def: "1"}},
			Worker:   {{name: "APP_X", typ: "integer", doc: "x", def: "2", origin: "w.go"}},
		}, "", `defaults to "1" in one place and "2" in w.go`},
		{"a description in the code and in extraEnv", map[string][]envField{
			Receiver: {{name: "USER", doc: "also"}},
		}, "", "USER has a doc comment in the code and a Doc in extraEnv"},
		{"a variable read by name with no description", map[string][]envField{
			Hookctl: {{name: "APP_NEW", origin: "cmd/hookctl/new.go:7"}},
		}, "", "APP_NEW (read at cmd/hookctl/new.go:7) has no type"},
		{"undocumented", map[string][]envField{
			Worker: {{name: "APP_NEW", typ: "string", def: "x", origin: "w.go"}},
		}, "", "APP_NEW (read at w.go) is undocumented"},
		{"no example", map[string][]envField{
			Worker: {{name: "APP_NEW", typ: "string", doc: "d", origin: "w.go"}},
		}, "", "has no default and no example"},
		{"extraEnv names a variable nothing reads", nil, "USER", "extraEnv describes USER, which no configuration code reads"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			for bin, fs := range tt.add {
				m[bin] = append(m[bin], fs...)
			}
			if tt.drop != "" {
				for bin, fs := range m {
					kept := fs[:0]
					for _, f := range fs {
						if f.name != tt.drop {
							kept = append(kept, f)
						}
					}
					m[bin] = kept
				}
			}
			_, err := merge(m)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestStructDocs(t *testing.T) {
	src := "package p\ntype T struct {\n" +
		"\t// A and B are shared.\n\tA int\n\tB int\n" +
		"\t// C names D, which is not right below.\n\tC int\n\n\tD int\n" +
		"\t// E is alone.\n\tE int\n\tF int\n}\n"
	fset, f := parseSrc(t, src)
	docs := map[string]string{}
	structDocs(fset, "T", f.Decls[0].(*ast.GenDecl).Specs[0].(*ast.TypeSpec).Type.(*ast.StructType), docs)
	require.Equal(t, map[string]string{
		"T.A": "A and B are shared.\n", "T.B": "A and B are shared.\n",
		"T.C": "C names D, which is not right below.\n", "T.D": "",
		"T.E": "E is alone.\n", "T.F": "",
	}, docs)
}

func TestTypeName(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want string
		elem reflect.Type
	}{
		{reflect.TypeFor[string](), "string", nil},
		{reflect.TypeFor[int64](), "integer", nil},
		{reflect.TypeFor[*bool](), "bool", nil},
		{reflect.TypeFor[time.Duration](), "duration", nil},
		{reflect.TypeFor[slog.Level](), "log level", nil},
		{reflect.TypeFor[[]sources.SecretRef](), "list", reflect.TypeFor[sources.SecretRef]()},
		{reflect.TypeFor[[]string](), "list of strings", nil},
		{reflect.TypeFor[*sources.Locator](), "mapping", reflect.TypeFor[sources.Locator]()},
	} {
		typ, elem, err := typeName(tt.typ)
		require.NoError(t, err, tt.typ)
		require.Equal(t, tt.want, typ, tt.typ)
		require.Equal(t, tt.elem, elem, tt.typ)
	}
	_, _, err := typeName(reflect.TypeFor[map[string]int]())
	require.ErrorContains(t, err, "unsupported type")
}

func TestExampleAt(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("sources:\n  - name: a\n  - name: b\n    hmac: {header: X-Sig, prefix: \"v1=\"}\n"), &doc))
	for path, want := range map[string]string{
		"sources[].name":        "a",
		"sources[].hmac.header": "X-Sig",
		"sources[].hmac":        `{header: X-Sig, prefix: "v1="}`,
		"sources[].hmac.prefix": `"v1="`,
		"sources[].missing":     "",
	} {
		require.Equal(t, want, exampleAt(&doc, path), path)
	}
}

func TestSplitDocAndDescribe(t *testing.T) {
	text, ex := splitDoc("Addr is the listen\naddress.\nExample: `:9000`\n")
	require.Equal(t, "Addr is the listen address.", text)
	require.Equal(t, ":9000", ex)
	keys := map[string]string{"Addr": "`APP_ADDR`", "ID": "`id`", "EventType": "`event_type`"}
	require.Equal(t, "The listen address.", describe(text, "Addr", keys))
	require.Equal(t, "`id` and `event_type` override where", describe("ID and EventType override where", "ID", keys))
	require.Equal(t, "", describe("", "Addr", keys))
}

// colourFile is a sources file type with a field that exampleSources does
// not set.
type colourFile struct {
	Colour string `yaml:"colour"`
}

func TestSourceFieldsNeedDocsAndExamples(t *testing.T) {
	walk := func(typ reflect.Type, docs map[string]string) error {
		var example yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(exampleSources), &example))
		_, err := sourceFields(typ, "", docs, &example)
		return err
	}
	docs, err := packageDocs(repoRoot(t), reflect.TypeFor[sources.File]())
	require.NoError(t, err)
	require.NoError(t, walk(reflect.TypeFor[sources.File](), docs))

	// The real types, with one field's comment gone.
	delete(docs, "Config.Name")
	require.ErrorContains(t, walk(reflect.TypeFor[sources.File](), docs), "Config.Name is undocumented")

	require.ErrorContains(t, walk(reflect.TypeFor[colourFile](), map[string]string{"colourFile.Colour": "Colour is a colour."}),
		"sets no colour")
}
