package sources

import "fmt"

// envSources are the sources FromEnv declares when there is no sources
// file. FromEnv, Names and LoadSender all read them from here.
var envSources = []envSource{
	{"stripe", "stripe", "STRIPE_WEBHOOK_SECRET"},
	{"bank", "hmac", "BANK_WEBHOOK_SECRET"},
}

// envSource is a source declared by a variable: its name, its type, and
// the variable that holds its secrets.
type envSource struct{ name, typ, env string }

// Names returns the names of the sources a receiver with this
// configuration serves, without resolving their secrets, so that an
// operator's tool can check a source name where the secrets are not
// available: those of the sources file at path (HOOKLINE_SOURCES), or
// stripe and bank when path is empty (FromEnv).
func Names(path string) ([]string, error) {
	if path == "" {
		names := make([]string, len(envSources))
		for i, s := range envSources {
			names[i] = s.name
		}
		return names, nil
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
