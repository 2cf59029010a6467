// Package config loads a binary's settings from the environment into a
// tagged struct, once, in main.
//
// Settings are declared with github.com/caarlos0/env tags:
//
//	type Config struct {
//		Addr    string   `env:"RECEIVER_ADDR" envDefault:":8080"`
//		Secrets []string `env:"STRIPE_WEBHOOK_SECRET"`
//	}
//
// On top of that library, Load adds the container convention for secrets:
// any variable X may instead be given as X_FILE, the path of a file that
// holds the value. Secrets can then come from mounted files (Kubernetes,
// Docker, systemd credentials) rather than the process environment.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// FileSuffix is appended to a variable's name to give the name of the
// variable that points at a file holding its value.
const FileSuffix = "_FILE"

// Load fills cfg, a pointer to a struct with env tags, from getenv. A
// variable X that is unset but has X_FILE set takes the contents of that file,
// with trailing newlines trimmed (editors and `echo` add one).
func Load(getenv func(string) string, cfg any) error {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return fmt.Errorf("read config tags: %w", err)
	}
	values := make(map[string]string, len(params))
	for _, p := range params {
		v, err := lookup(getenv, p.Key)
		if err != nil {
			return err
		}
		if v != "" {
			values[p.Key] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: values}); err != nil {
		return fmt.Errorf("parse environment: %w", flatten(err, cfg, values))
	}
	return nil
}

// lookup returns the value of key, or the contents of the file named by
// key_FILE. Setting both is an error: silently preferring one would hide a
// deployment mistake, such as a stale secret left in the environment.
func lookup(getenv func(string) string, key string) (string, error) {
	direct := getenv(key)
	path := getenv(key + FileSuffix)
	switch {
	case path == "":
		return direct, nil
	case direct != "":
		return "", fmt.Errorf("both %s and %s%s are set; set only one", key, key, FileSuffix)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is not secret; the contents would be, and are never shown.
		return "", fmt.Errorf("read %s%s=%q: %w", key, FileSuffix, path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// flatten turns the library's aggregate error into one line per problem,
// naming the variable rather than the Go field that failed to parse.
func flatten(err error, cfg any, values map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := envKeys(cfg)
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && keys[pe.Name] != "" {
			key := keys[pe.Name]
			msgs = append(msgs, fmt.Sprintf("%s=%q: %v", key, values[key], pe.Err))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envKeys maps the field names of the struct cfg points to onto their
// variable names.
func envKeys(cfg any) map[string]string {
	t := reflect.TypeOf(cfg).Elem()
	keys := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		keys[f.Name] = key
	}
	return keys
}

// List splits a comma-separated setting such as a list of secrets,
// trimming spaces and dropping empty entries, so "a, b," means [a b].
func List(raw []string) []string {
	out := raw[:0:0]
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Value reads one variable, or the file named by name_FILE, for tools that
// need one setting and not a struct. Setting both is an error.
func Value(getenv func(string) string, name string) (string, error) {
	return lookup(getenv, name)
}

// Required is Value for a setting a tool cannot run without: unset, it is
// an error that names the variable and its _FILE form and, if want is not
// empty, says what to give.
func Required(getenv func(string) string, name, want string) (string, error) {
	v, err := lookup(getenv, name)
	if err != nil {
		return "", err
	}
	if v == "" {
		msg := fmt.Sprintf("%s (or %s_FILE) is not set", name, name)
		if want != "" {
			msg += ": give " + want
		}
		return "", errors.New(msg)
	}
	return v, nil
}

// Secrets reads the comma-separated secret list in variable name, or in the
// file named by name_FILE, for tools that need one setting and not a struct.
func Secrets(getenv func(string) string, name string) ([]string, error) {
	v, err := lookup(getenv, name)
	if err != nil {
		return nil, err
	}
	return List(strings.Split(v, ",")), nil
}
