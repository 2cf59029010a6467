// Command configdoc writes the configuration reference, docs/CONFIGURATION.md,
// from the configuration code (see package configdoc). With -check it writes
// nothing and fails if the file differs from what it would write.
//
//	go run ./internal/configdoc/cmd/configdoc                 # regenerate
//	go run ./internal/configdoc/cmd/configdoc -check          # CI
//	go run ./internal/configdoc/cmd/configdoc -out /tmp/c.md  # elsewhere
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hookline/hookline/internal/configdoc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "configdoc: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("configdoc", flag.ContinueOnError)
	root := fs.String("root", "", "repository root (default: the directory holding go.mod above the working directory)")
	out := fs.String("out", "", "file to write (default: <root>/"+configdoc.OutputPath+"); - for stdout")
	check := fs.Bool("check", false, "write nothing; fail if the file is stale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		r, err := configdoc.RepoRoot(".")
		if err != nil {
			return err
		}
		*root = r
	}
	if *out == "" {
		*out = filepath.Join(*root, configdoc.OutputPath)
	}
	doc, err := configdoc.Generate(*root)
	if err != nil {
		return err
	}
	switch {
	case *out == "-":
		_, err = os.Stdout.Write(doc)
		return err
	case *check:
		have, err := os.ReadFile(*out)
		if err != nil {
			return err
		}
		if !bytes.Equal(have, doc) {
			return fmt.Errorf("%s is stale: run `make docs` and commit it", *out)
		}
		return nil
	}
	return os.WriteFile(*out, doc, 0o644)
}
