// Package configdoc derives Hookline's configuration reference from the
// configuration code itself, and renders it as docs/CONFIGURATION.md.
//
// Nothing here is run by the binaries. What the code reads comes from the
// code as compiled, so that the reference cannot list a variable the code
// no longer reads, nor miss one it does:
//
//   - hookline.ReceiverConfig and hookline.WorkerConfig: env.GetFieldParams,
//     the call config.Load makes, gives each variable, its envDefault and
//     whether it is required; reflection gives the Go field and its type.
//     config.Load accepts X_FILE for each.
//   - internal/sources.FromEnv (the secrets of the two default sources): it
//     is run with a getenv that records what it is asked.
//   - internal/sources.File and the types below it: reflection over their
//     fields and yaml tags.
//
// Reflection cannot see comments, so descriptions are the fields' doc
// comments, looked up by Type.Field in the packages' source (a doc line
// "Example: v" gives the example). Only what no type declares is read from
// source: the getenv("X") / os.Getenv("X") calls with a literal name in a
// binary's files. Their descriptions are in extraEnv, and Load fails if a
// variable read by the code has no entry there, or an entry names a
// variable the code no longer reads.
//
// Regenerate with `go generate ./internal/configdoc` or `make docs`; `make
// docs-check` and this package's tests fail when the file is stale.
package configdoc

//go:generate go run github.com/hookline/hookline/internal/configdoc/cmd/configdoc -root ../.. -out ../../docs/CONFIGURATION.md

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hookline/hookline/internal/config"
)

// Binary names, as under cmd/.
const (
	Receiver = "receiver"
	Worker   = "worker"
	Hookctl  = "hookctl"
)

// Binaries are the binaries whose configuration is documented, in the order
// the reference lists them. cmd/hookbench is a development tool and is left
// out.
var Binaries = []string{Receiver, Worker, Hookctl}

// OutputPath is where the reference is written, relative to the repository
// root.
const OutputPath = "docs/CONFIGURATION.md"

// Reference is everything a deployment can configure.
type Reference struct {
	// Env lists every environment variable, in the order of the reference.
	Env []EnvVar
	// SourceFields lists every field of the sources file (HOOKLINE_SOURCES),
	// depth first, in declaration order.
	SourceFields []SourceField
	// ExampleSources is a sources file that sets every field; the tests
	// check that internal/sources accepts it.
	ExampleSources string
}

// EnvVar is one environment variable.
type EnvVar struct {
	// Name is the variable's name, such as DATABASE_URL.
	Name string
	// Type is the value's type: string, integer, duration, log level, list.
	Type string
	// Default is the value used when the variable is unset; "" for none.
	Default string
	// Required is true when every binary in RequiredBy refuses to start (or
	// to run a database command) without it, and RequiredBy is not empty.
	Required bool
	// RequiredBy lists the binaries that require it.
	RequiredBy []string
	// RequiredUnless names a variable whose presence makes this one
	// optional: STRIPE_WEBHOOK_SECRET is required unless HOOKLINE_SOURCES
	// is set.
	RequiredUnless string
	// Binaries lists the binaries that read it (receiver, worker, hookctl).
	Binaries []string
	// FileForm lists the binaries that also accept Name+"_FILE", the path
	// of a file holding the value (internal/config).
	FileForm []string
	// Secret marks values that must come from a secret store, not a
	// ConfigMap or a committed file.
	Secret bool
	// Doc is the description, one paragraph.
	Doc string
	// Example is a complete assignment, such as RECEIVER_ADDR=:8080.
	Example string
	// Origins say where in the code the variable is read, such as
	// "hookline.WorkerConfig.Addr" or "cmd/hookctl/replay.go:125".
	Origins []string
}

// ReadBy reports whether binary reads v.
func (v EnvVar) ReadBy(binary string) bool { return slices.Contains(v.Binaries, binary) }

// FileFormFor reports whether binary accepts v as v.Name+"_FILE".
func (v EnvVar) FileFormFor(binary string) bool { return slices.Contains(v.FileForm, binary) }

// SourceField is one field of the sources file.
type SourceField struct {
	// Path is the field's YAML path, such as sources[].hmac.header.
	Path string
	// Type is the YAML type: string, integer, bool, duration, list, mapping.
	Type string
	// Default is the value when unset; "" for none.
	Default string
	// Required says whether the field must be set: "yes", or a condition.
	Required string
	// Doc is the description.
	Doc string
	// Example is the field's value in ExampleSources, in YAML flow form.
	Example string
	// GoField names the Go field, such as HMACConfig.Header.
	GoField string
}

// Lookup returns the variable called name, if the reference has it.
func (r Reference) Lookup(name string) (EnvVar, bool) {
	for _, v := range r.Env {
		if v.Name == name {
			return v, true
		}
	}
	return EnvVar{}, false
}

// Resolve returns the variable that a deployment setting name configures for
// binary: name itself, or name without "_FILE" where binary accepts the file
// form. ok is false when binary reads no such variable.
func (r Reference) Resolve(binary, name string) (v EnvVar, viaFile, ok bool) {
	if v, ok := r.Lookup(name); ok && v.ReadBy(binary) {
		return v, false, true
	}
	if base, isFile := strings.CutSuffix(name, FileSuffix); isFile {
		if v, ok := r.Lookup(base); ok && v.FileFormFor(binary) {
			return v, true, true
		}
	}
	return EnvVar{}, false, false
}

// FileSuffix is appended to a variable's name to name its file form, as
// internal/config reads it.
const FileSuffix = config.FileSuffix

// Load derives the reference from the code under root, the repository's
// root directory.
func Load(root string) (Reference, error) {
	env, err := loadEnv(root)
	if err != nil {
		return Reference{}, fmt.Errorf("configdoc: environment: %w", err)
	}
	fields, err := loadSourceFields(root)
	if err != nil {
		return Reference{}, fmt.Errorf("configdoc: sources file: %w", err)
	}
	return Reference{Env: env, SourceFields: fields, ExampleSources: exampleSources}, nil
}

// Generate renders the reference for the repository at root.
func Generate(root string) ([]byte, error) {
	ref, err := Load(root)
	if err != nil {
		return nil, err
	}
	return Markdown(ref), nil
}

// RepoRoot walks up from dir to the directory holding go.mod.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("configdoc: repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("configdoc: no go.mod above %s", dir)
		}
		dir = parent
	}
}
