// deploy/compose.yaml: its services, read as processes (env_file,
// environment, ports, healthcheck, stop_grace_period).

package deploy_test

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]struct {
		Image   string      `yaml:"image"`
		Build   yaml.Node   `yaml:"build"`
		Command yaml.Node   `yaml:"command"`
		EnvFile yaml.Node   `yaml:"env_file"`
		Env     yaml.Node   `yaml:"environment"`
		Ports   []yaml.Node `yaml:"ports"`
		Expose  []yaml.Node `yaml:"expose"`
		Grace   string      `yaml:"stop_grace_period"`
		Health  *struct {
			Test yaml.Node `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn yaml.Node   `yaml:"depends_on"`
		MemLimit  intOrString `yaml:"mem_limit"`
		Deploy    struct {
			Resources struct {
				Limits struct {
					Memory intOrString `yaml:"memory"`
				} `yaml:"limits"`
			} `yaml:"resources"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

func (d *deployment) readCompose(p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		d.parseErrors = append(d.parseErrors, err.Error())
		return
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: %v", d.rel(p), err))
		return
	}
	d.composeFn = d.rel(p)
	envFileUsers := map[string][]string{}
	for name, s := range cf.Services {
		for _, ef := range stringsOf(s.EnvFile) {
			envFileUsers[ef] = append(envFileUsers[ef], name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		pr := proc{id: d.composeFn + " services." + name, file: d.composeFn, image: s.Image, grace: -1, portNames: map[string]int{}}
		if s.Command.Kind == yaml.SequenceNode {
			pr.command = stringsOf(s.Command)
		} else if s.Command.Kind == yaml.ScalarNode {
			pr.command = strings.Fields(s.Command.Value)
		}
		for _, ef := range stringsOf(s.EnvFile) {
			vals, used, err := readEnvFile(filepath.Join(filepath.Dir(p), ef))
			if err != nil {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: env_file: %v", pr.id, err))
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(vals)) {
				pr.env = append(pr.env, envSetting{name: k, value: vals[k], shared: len(envFileUsers[ef]) > 1, origin: "env_file " + d.rel(used)})
			}
			pr.sharedWith = append(pr.sharedWith, envFileUsers[ef]...)
		}
		switch s.Env.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(s.Env.Content); i += 2 {
				pr.env = append(pr.env, envSetting{name: s.Env.Content[i].Value, value: s.Env.Content[i+1].Value, literal: true, origin: "environment"})
			}
		case yaml.SequenceNode:
			for _, c := range s.Env.Content {
				k, v, _ := strings.Cut(c.Value, "=")
				pr.env = append(pr.env, envSetting{name: k, value: v, literal: true, origin: "environment"})
			}
		}
		for _, port := range s.Ports {
			spec := port.Value
			if port.Kind == yaml.MappingNode {
				var long struct {
					Target int `yaml:"target"`
				}
				_ = port.Decode(&long)
				pr.ports = append(pr.ports, long.Target)
				continue
			}
			parts := strings.Split(strings.Split(spec, "/")[0], ":")
			if n, err := strconv.Atoi(parts[len(parts)-1]); err == nil {
				pr.ports = append(pr.ports, n)
			}
		}
		for _, e := range s.Expose {
			if n, err := strconv.Atoi(strings.Split(e.Value, "/")[0]); err == nil {
				pr.ports = append(pr.ports, n)
			}
		}
		if s.Health != nil {
			pr.probes = append(pr.probes, composeHealthcheck(stringsOf(s.Health.Test)))
		}
		if s.Grace != "" {
			if g, err := time.ParseDuration(s.Grace); err == nil {
				pr.grace = g
			} else {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: stop_grace_period %q: %v", pr.id, s.Grace, err))
			}
		} else {
			pr.grace = 10 * time.Second // Compose's default
		}
		// Compose v2 applies either without swarm; they must agree.
		for _, l := range []struct{ key, val string }{
			{"mem_limit", string(s.MemLimit)},
			{"deploy.resources.limits.memory", string(s.Deploy.Resources.Limits.Memory)},
		} {
			if l.val == "" {
				continue
			}
			n, err := parseComposeBytes(l.val)
			switch {
			case err != nil:
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: %s: %v", pr.id, l.key, err))
			case pr.memLimit != 0 && n != pr.memLimit:
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: %s %s disagrees with %s", pr.id, l.key, l.val, pr.memLimitFrom))
			default:
				pr.memLimit, pr.memLimitFrom = n, l.key+" "+l.val
			}
		}
		d.procs = append(d.procs, pr)
	}
}

// composeHealthcheck reads a healthcheck as a probe: `hookctl probe URL` is
// an HTTP GET of URL's path on its port; anything else runs a command that
// the distroless image may not have, and is reported as an exec probe.
func composeHealthcheck(test []string) probe {
	if len(test) == 4 && test[0] == "CMD" && filepath.Base(test[1]) == "hookctl" && test[2] == "probe" {
		if u, err := url.Parse(test[3]); err == nil {
			return probe{kind: "healthcheck", path: u.Path, port: u.Port()}
		}
	}
	return probe{kind: "healthcheck-exec", path: strings.Join(test, " ")}
}
