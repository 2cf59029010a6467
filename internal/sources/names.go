package sources

import "fmt"

// envNames are the sources FromEnv declares when there is no sources file.
var envNames = []string{"stripe", "bank"}

// Names returns the names of the sources a receiver with this
// configuration serves, without resolving their secrets, so that an
// operator's tool can check a source name where the secrets are not
// available: those of the sources file at path (HOOKLINE_SOURCES), or
// stripe and bank when path is empty (FromEnv).
func Names(path string) ([]string, error) {
	if path == "" {
		return append([]string(nil), envNames...), nil
	}
	f, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("HOOKLINE_SOURCES=%s: %w", path, err)
	}
	names := make([]string, 0, len(f.Sources))
	for _, c := range f.Sources {
		names = append(names, c.Name)
	}
	return names, nil
}

// Nearest returns the name in names that name most likely misspells, or ""
// when none is close (the rule that suggests a sources file's field names).
func Nearest(name string, names []string) string { return suggest(name, names) }
