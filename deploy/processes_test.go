// The checks of each process a deployment runs (Kubernetes container,
// Compose service, systemd unit): image, binary, environment, secrets,
// ports and probes, preStop and the shutdown grace period.

package deploy_test

import (
	"fmt"
	"net"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/configdoc"
)

// envSetting is one variable a deployment sets for a process.
type envSetting struct {
	name, value string
	// literal is a value written in the manifest (not from a Secret).
	literal bool
	// shared is set by a file several services load (compose env_file,
	// systemd EnvironmentFile): a variable there need only be read by one
	// of them.
	shared bool
	origin string
}

type probe struct {
	kind, path, port string
}

type mount struct {
	path   string
	secret bool
}

// proc is one process a deployment runs: a Kubernetes container, a Compose
// service or a systemd unit.
type proc struct {
	id      string // "deploy/compose.yaml services.receiver"
	file    string
	image   string // "" for systemd
	command []string
	env     []envSetting
	// envUnknown: envFrom a Secret, whose keys the manifest does not show.
	envUnknown []string
	ports      []int
	portNames  map[string]int
	probes     []probe
	preStop    int // seconds of preStop sleep
	preExec    []string
	grace      time.Duration // -1: not set
	mounts     []mount
	labels     map[string]string
	// memLimit is the hard memory limit in bytes, 0 if none is known;
	// memLimitFrom says where it is set ("resources.limits.memory 512Mi").
	memLimit     int64
	memLimitFrom string
	// sharedGroup names the services that load the same shared env file.
	sharedWith []string
}

// binaryOf is the Hookline binary a process runs, "" for another image.
func (d *deployment) binaryOf(c codeFacts, p proc) string {
	cmd := p.command
	if len(cmd) == 0 && d.isHooklineImage(p.image) {
		cmd = d.dockerCmd
	}
	if len(cmd) == 0 {
		return ""
	}
	b := path.Base(cmd[0])
	if slices.Contains(configdoc.Binaries, b) {
		return b
	}
	return ""
}

func (d *deployment) isHooklineImage(image string) bool {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return d.dockerImage != "" && repo == d.dockerImage
}

// otherImages are the images, besides Hookline's, that a deployment may run,
// with the variables they may be given.
var otherImages = map[string]*regexp.Regexp{
	"postgres": regexp.MustCompile(`^(POSTGRES_[A-Z_]+|PG[A-Z_]+)$`),
	// The optional tracing profile's trace store; it needs no variable.
	"jaeger": regexp.MustCompile(`^$`),
}

func otherImage(image string) (string, *regexp.Regexp) {
	repo := image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	name := path.Base(repo)
	return name, otherImages[name]
}

func envValue(p proc, name string) (string, bool) {
	for i := len(p.env) - 1; i >= 0; i-- { // the last setting wins
		if p.env[i].name == name {
			return p.env[i].value, true
		}
	}
	return "", false
}

func (d *deployment) checkProc(c codeFacts, p proc, f findings) {
	bin := d.binaryOf(c, p)
	id := p.id

	// image: Hookline's, or a known other image.
	f.touch(id + "/image")
	if p.image != "" && !d.isHooklineImage(p.image) {
		if name, _ := otherImage(p.image); otherImages[name] == nil {
			f.add(id+"/image", "image %q is neither %s (deploy/Dockerfile) nor a known dependency", p.image, d.dockerImage)
		}
	}
	hookline := p.image == "" || d.isHooklineImage(p.image)
	if !hookline {
		// Another image: only its own variables, set explicitly.
		_, allowed := otherImage(p.image)
		if allowed == nil {
			return
		}
		f.touch(id + "/env-known")
		for _, e := range p.env {
			if !e.shared && !allowed.MatchString(e.name) {
				f.add(id+"/env-known", "%s (%s) is not a variable of image %s", e.name, e.origin, p.image)
			}
		}
		return
	}

	// binary: the command runs a Hookline binary that exists and is built.
	f.touch(id + "/binary")
	if bin == "" {
		f.add(id+"/binary", "command %v runs no Hookline binary (%v)", p.command, configdoc.Binaries)
		return
	}
	if !slices.Contains(c.cmds, bin) {
		f.add(id+"/binary", "cmd/%s does not exist", bin)
	}
	if len(p.command) > 0 {
		if p.image != "" && !slices.Contains(d.dockerInstalled, p.command[0]) {
			f.add(id+"/binary", "%s is not installed by deploy/Dockerfile (%v)", p.command[0], d.dockerInstalled)
		}
		if p.image == "" && p.command[0] != "/usr/local/bin/"+bin {
			f.add(id+"/binary", "ExecStart=%s: the other deployments install binaries in /usr/local/bin", p.command[0])
		}
	}
	if bin == configdoc.Hookctl {
		if len(p.command) < 2 || !slices.Contains(c.hookctlCommands, p.command[1]) {
			f.add(id+"/binary", "hookctl command %v is not one of hookctl's subcommands %v", p.command[1:], c.hookctlCommands)
		}
	}

	// env-known: every variable set is read by this binary.
	f.touch(id + "/env-known")
	readBySharers := func(name string) bool {
		for _, other := range d.procs {
			if other.file == p.file && slices.Contains(p.sharedWith, path.Base(strings.TrimPrefix(other.id, p.file+" services."))) {
				ob := d.binaryOf(c, other)
				if ob != "" {
					if _, _, ok := c.ref.Resolve(ob, name); ok {
						return true
					}
				} else if _, allowed := otherImage(other.image); allowed != nil && allowed.MatchString(name) {
					return true
				}
			}
		}
		return false
	}
	for _, e := range p.env {
		if _, _, ok := c.ref.Resolve(bin, e.name); ok {
			continue
		}
		if goRuntimeEnv[e.name] {
			continue
		}
		if e.shared && (readBySharers(e.name) || (strings.HasPrefix(p.file, "deploy/systemd/") && d.readByAnyUnit(c, e.name))) {
			continue
		}
		hint := ""
		if v, ok := c.ref.Lookup(strings.TrimSuffix(e.name, configdoc.FileSuffix)); ok && v.ReadBy(bin) {
			hint = fmt.Sprintf(" (%s reads %s, but not in the %s form)", bin, v.Name, configdoc.FileSuffix)
		}
		f.add(id+"/env-known", "%s (%s) is not read by %s%s; see docs/CONFIGURATION.md", e.name, e.origin, bin, hint)
	}

	// env-required: every variable the binary requires is set.
	f.touch(id + "/env-required")
	set := func(name string) bool {
		if _, ok := envValue(p, name); ok {
			return true
		}
		v, _ := c.ref.Lookup(name)
		if v.FileFormFor(bin) {
			_, ok := envValue(p, name+configdoc.FileSuffix)
			return ok
		}
		return false
	}
	if len(p.envUnknown) == 0 {
		for _, v := range c.ref.Env {
			if !slices.Contains(v.RequiredBy, bin) || set(v.Name) {
				continue
			}
			if v.RequiredUnless != "" && set(v.RequiredUnless) {
				continue
			}
			unless := ""
			if v.RequiredUnless != "" {
				unless = " (or " + v.RequiredUnless + ")"
			}
			f.add(id+"/env-required", "%s requires %s%s, which is not set", bin, v.Name, unless)
		}
	}

	// env-both-forms: X and X_FILE together make internal/config fail.
	f.touch(id + "/env-both-forms")
	for _, e := range p.env {
		if base, ok := strings.CutSuffix(e.name, configdoc.FileSuffix); ok {
			if slices.ContainsFunc(p.env, func(o envSetting) bool { return o.name == base && (o.value != "" || !o.literal) }) {
				f.add(id+"/env-both-forms", "both %s and %s are set; %s refuses to start", base, e.name, bin)
			}
		}
	}

	// systemd: an EnvironmentFile= overrides Environment= (systemd.exec(5)),
	// so a variable the unit sets that its files also set is dead.
	if strings.HasPrefix(p.file, "deploy/systemd/") {
		f.touch(id + "/env-not-overridden")
		for _, e := range p.env {
			if e.origin != "Environment=" {
				continue
			}
			for _, o := range p.env {
				if o.origin != "Environment=" && (o.name == e.name ||
					strings.TrimSuffix(o.name, configdoc.FileSuffix) == strings.TrimSuffix(e.name, configdoc.FileSuffix)) {
					f.add(id+"/env-not-overridden", "Environment=%s=%s is overridden by %s=%s from %s", e.name, e.value, o.name, o.value, o.origin)
				}
			}
		}
	}

	// secrets: secret values never literal in a manifest.
	f.touch(id + "/secrets-not-literal")
	for _, e := range p.env {
		v, via, ok := c.ref.Resolve(bin, e.name)
		if ok && v.Secret && !via && e.literal && e.value != "" && !strings.HasPrefix(p.file, "deploy/systemd/") {
			f.add(id+"/secrets-not-literal", "%s is a secret but its value is written in the manifest (%s); use a Secret or %s%s", e.name, e.origin, e.name, configdoc.FileSuffix)
		}
	}
	// Kubernetes: a _FILE variable points into a mounted Secret.
	if len(p.mounts) > 0 || strings.HasPrefix(p.file, "deploy/kubernetes/") {
		f.touch(id + "/file-env-mounted")
		for _, e := range p.env {
			if _, via, ok := c.ref.Resolve(bin, e.name); !ok || !via {
				continue
			}
			inSecret := slices.ContainsFunc(p.mounts, func(m mount) bool {
				return m.secret && strings.HasPrefix(e.value, strings.TrimSuffix(m.path, "/")+"/")
			})
			if !inSecret {
				f.add(id+"/file-env-mounted", "%s=%s is not under a volumeMount of a Secret", e.name, e.value)
			}
		}
	}

	// ports: a server listens where its container, probes and Services say.
	if addr, ok := addrVar[bin]; ok {
		want := d.listenPort(c, p, addr)
		f.touch(id + "/ports")
		if want == 0 {
			f.add(id+"/ports", "%s does not give a port", addr)
		} else if !strings.HasPrefix(p.file, "deploy/systemd/") && !slices.Contains(p.ports, want) {
			f.add(id+"/ports", "%s listens on %d (%s), but the container ports are %v", bin, want, addr, p.ports)
		}
		f.touch(id + "/probes")
		for _, pr := range p.probes {
			if strings.HasSuffix(pr.kind, "-exec") {
				f.add(id+"/probes", "%s probe runs %q; the image has no shell or tools: use httpGet, or hookctl probe URL", strings.TrimSuffix(pr.kind, "-exec"), pr.path)
				continue
			}
			port, ok := p.portNames[pr.port]
			if !ok {
				port, _ = strconv.Atoi(pr.port)
			}
			if port != want {
				f.add(id+"/probes", "%s probe port %s is not the port %s listens on (%d)", pr.kind, pr.port, addr, want)
			}
			if pr.path != "" && !serves(c.routes[bin], http.MethodGet, pr.path) {
				f.add(id+"/probes", "%s probe path %s is not a GET route of the %s (%v)", pr.kind, pr.path, bin, c.routes[bin])
			}
			if pr.kind == "liveness" && pr.path == "/readyz" {
				f.add(id+"/probes", "liveness probe on /readyz restarts the pod when the database is down; use /healthz")
			}
		}
		if strings.HasPrefix(p.file, "deploy/kubernetes/") {
			kinds := map[string]string{}
			for _, pr := range p.probes {
				kinds[pr.kind] = pr.path
			}
			if kinds["readiness"] != "/readyz" {
				f.add(id+"/probes", "readiness probe is %q, want /readyz", kinds["readiness"])
			}
			if kinds["liveness"] != "/healthz" {
				f.add(id+"/probes", "liveness probe is %q, want /healthz", kinds["liveness"])
			}
		}
	}

	// preStop: what it runs exists in the image.
	f.touch(id + "/prestop")
	if len(p.preExec) > 0 && d.dockerNoShell && !slices.Contains(d.dockerInstalled, p.preExec[0]) {
		f.add(id+"/prestop", "preStop runs %q, which the distroless image does not have; use lifecycle.preStop.sleep", p.preExec[0])
	}

	// shutdown: the grace period covers the binary's own shutdown.
	f.touch(id + "/shutdown-grace")
	if p.grace >= 0 {
		dur := func(name string) time.Duration {
			v, ok := envValue(p, name)
			if !ok {
				ref, _ := c.ref.Lookup(name)
				v = ref.Default
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				f.add(id+"/shutdown-grace", "%s=%q is not a duration", name, v)
			}
			return d
		}
		var need time.Duration
		var parts string
		switch bin {
		case configdoc.Worker:
			need = dur("WORKER_SOFT_STOP_TIMEOUT") + dur("WORKER_HARD_STOP_TIMEOUT")
			parts = "WORKER_SOFT_STOP_TIMEOUT + WORKER_HARD_STOP_TIMEOUT"
		case configdoc.Receiver:
			need = time.Duration(p.preStop)*time.Second + dur("SHUTDOWN_TIMEOUT")
			parts = "preStop sleep + SHUTDOWN_TIMEOUT"
			// After the server drains, batch mode flushes its open batch,
			// bounded by INGEST_TIMEOUT.
			if mode, _ := envValue(p, "INGEST_MODE"); mode != "single" {
				need += dur("INGEST_TIMEOUT")
				parts += " + INGEST_TIMEOUT (the last batch's flush)"
			}
		}
		if p.grace < need {
			f.add(id+"/shutdown-grace", "grace period %s is shorter than %s = %s: SIGKILL would cut the shutdown", p.grace, parts, need)
		}
	}

	// memory-limit: GOMEMLIMIT set, well-formed and below the memory limit
	// (memory_test.go).
	if bin == configdoc.Receiver || bin == configdoc.Worker {
		d.checkMemory(c, p, bin, f)
	}
}

// readByAnyUnit: a shared systemd EnvironmentFile is loaded by every unit;
// a variable in it need only be read by one of their binaries.
func (d *deployment) readByAnyUnit(c codeFacts, name string) bool {
	for _, o := range d.procs {
		if strings.HasPrefix(o.file, "deploy/systemd/") {
			if b := d.binaryOf(c, o); b != "" {
				if _, _, ok := c.ref.Resolve(b, name); ok {
					return true
				}
			}
		}
	}
	return false
}

func (d *deployment) listenPort(c codeFacts, p proc, addrName string) int {
	addr, ok := envValue(p, addrName)
	if !ok {
		v, _ := c.ref.Lookup(addrName)
		addr = v.Default
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}
