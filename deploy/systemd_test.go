// deploy/systemd/*.service: each unit read as a process (ExecStart=,
// Environment=, EnvironmentFile=, TimeoutStopSec=, MemoryMax=).

package deploy_test

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// readUnit reads a systemd unit's ExecStart=, Environment=, EnvironmentFile=,
// TimeoutStopSec= and MemoryMax=. A template's %i is taken as instance 1.
func (d *deployment) readUnit(p string) {
	f, err := os.Open(p)
	if err != nil {
		d.parseErrors = append(d.parseErrors, err.Error())
		return
	}
	defer f.Close()
	rel := d.rel(p)
	d.units = append(d.units, rel)
	pr := proc{id: rel, file: rel, grace: 90 * time.Second, portNames: map[string]int{}} // DefaultTimeoutStopSec
	expand := strings.NewReplacer("%i", "1", "%I", "1", "%d", "/run/credentials/"+filepath.Base(p), "%%", "%")
	var direct []envSetting
	var fromFiles []envSetting
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		val = expand.Replace(strings.TrimSpace(val))
		switch strings.TrimSpace(key) {
		case "ExecStart":
			pr.command = strings.Fields(strings.TrimLeft(val, "-@:+!"))
		case "Environment":
			for _, a := range splitQuoted(val) {
				k, v, _ := strings.Cut(a, "=")
				direct = append(direct, envSetting{name: k, value: v, literal: true, origin: "Environment="})
			}
		case "EnvironmentFile":
			optional := strings.HasPrefix(val, "-")
			val = strings.TrimPrefix(val, "-")
			// /etc/hookline/hookline.env is documented by deploy/hookline.env.example.
			local := filepath.Join(d.root, "deploy", filepath.Base(val))
			vals, used, err := readEnvFile(local)
			if err != nil {
				if !optional {
					d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: EnvironmentFile=%s has no committed example (%v)", rel, val, err))
				}
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(vals)) {
				fromFiles = append(fromFiles, envSetting{name: k, value: vals[k], shared: true, origin: "EnvironmentFile=" + val + " (" + d.rel(used) + ")"})
			}
		case "TimeoutStopSec":
			if g, err := parseSystemdSpan(val); err == nil {
				pr.grace = g
			} else {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: TimeoutStopSec=%s: %v", rel, val, err))
			}
		case "MemoryMax":
			n, err := parseSystemdBytes(val)
			if err != nil {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: MemoryMax=%s: %v", rel, val, err))
			}
			pr.memLimit, pr.memLimitFrom = n, "MemoryMax="+val // the last one wins
		}
	}
	// Files override Environment= (systemd.exec(5)); keep that order.
	pr.env = append(direct, fromFiles...)
	d.procs = append(d.procs, pr)
}

func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == ' ':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func parseSystemdSpan(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	s = strings.NewReplacer("min", "m", " ", "").Replace(s)
	return time.ParseDuration(s)
}
