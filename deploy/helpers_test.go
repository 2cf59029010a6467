// Small parsing helpers shared by the readers: files, env files, YAML nodes.

package deploy_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// readEnvFile reads KEY=VALUE lines. A file that does not exist in the
// repository (it holds secrets) is read from its committed .example.
func readEnvFile(p string) (map[string]string, string, error) {
	for _, cand := range []string{p, p + ".example"} {
		f, err := os.Open(cand)
		if err != nil {
			continue
		}
		defer f.Close()
		out := map[string]string{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			if ok {
				out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
		return out, cand, sc.Err()
	}
	return nil, "", fmt.Errorf("neither %s nor %s.example exists", p, p)
}

func stringsOf(n yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				out = append(out, c.Value)
			} else if c.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(c.Content); i += 2 {
					if c.Content[i].Value == "path" {
						out = append(out, c.Content[i+1].Value)
					}
				}
			}
		}
		return out
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
