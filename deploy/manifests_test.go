// Package deploy_test checks the deployment files in deploy/ against the
// code they deploy, so that drift between them fails CI:
//
//   - every environment variable a manifest sets is one the binary reads
//     (internal/configdoc's reference, derived from the configuration code),
//     and every variable a binary requires is set;
//   - probe and scrape paths exist in the routers: the receiver's from the
//     real echo instance (receiver.New), the worker's from the route calls
//     in cmd/worker/admin.go (package main, so parsed rather than built);
//   - container, Service, probe, Ingress, ServiceMonitor and NetworkPolicy
//     ports agree with each other and with the *_ADDR each binary listens on;
//   - images are the one deploy/Dockerfile builds, and the binaries named in
//     commands, ExecStart= and preStop hooks exist in it and under cmd/;
//   - shutdown budgets (terminationGracePeriodSeconds, stop_grace_period,
//     TimeoutStopSec) cover the binaries' own shutdown timeouts;
//   - kustomizations reference files and objects that exist, and no Secret
//     is committed.
//
// Each check is a subtest named after the file and object it inspects, so a
// failure says what drifted where. TestChecksCatchDrift mutates a copy of
// deploy/ to prove that each check can fail.
package deploy_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/configdoc"
	"github.com/hookline/hookline/internal/receiver"
)

// ---------------------------------------------------------------------------
// What the code says: loaded once from the repository.

type codeFacts struct {
	ref configdoc.Reference
	// routes maps a binary to its GET routes (echo path syntax).
	routes map[string][]string
	// hookctlCommands are hookctl's subcommands (cobra Use: first word).
	hookctlCommands []string
	// cmds are the directories under cmd/.
	cmds []string
	// module is the Go module path.
	module string
}

// addrVar is the variable that sets each server binary's listen address.
var addrVar = map[string]string{
	configdoc.Receiver: "RECEIVER_ADDR",
	configdoc.Worker:   "WORKER_ADDR",
}

var (
	factsOnce sync.Once
	facts     codeFacts
	factsErr  error
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := configdoc.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadFacts(t *testing.T) codeFacts {
	t.Helper()
	root := repoRoot(t)
	factsOnce.Do(func() { facts, factsErr = readFacts(root) })
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return facts
}

func readFacts(root string) (codeFacts, error) {
	var f codeFacts
	var err error
	if f.ref, err = configdoc.Load(root); err != nil {
		return f, err
	}
	for bin, name := range addrVar {
		if v, ok := f.ref.Lookup(name); !ok || !v.ReadBy(bin) {
			return f, fmt.Errorf("%s no longer reads %s: update addrVar", bin, name)
		}
	}
	f.routes = map[string][]string{configdoc.Receiver: receiverRoutes()}
	if f.routes[configdoc.Worker], err = workerRoutes(filepath.Join(root, "cmd/worker/admin.go")); err != nil {
		return f, err
	}
	if f.hookctlCommands, err = cobraCommands(filepath.Join(root, "cmd/hookctl")); err != nil {
		return f, err
	}
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		return f, err
	}
	for _, e := range entries {
		if e.IsDir() {
			f.cmds = append(f.cmds, e.Name())
		}
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return f, err
	}
	if m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(mod); m != nil {
		f.module = string(m[1])
	}
	return f, nil
}

// receiverRoutes asks the real receiver router for its GET routes. It is
// built with a metrics handler, as cmd/receiver builds it; nothing is served.
func receiverRoutes() []string {
	e := receiver.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil,
		receiver.Options{Metrics: http.NotFoundHandler()})
	var out []string
	for _, r := range e.Routes() {
		if r.Method == http.MethodGet || r.Method == "POST" {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// workerRoutes reads the routes the worker's admin server registers in
// cmd/worker/admin.go: calls e.GET/e.Any/... with a literal or a package
// constant as the path. The admin handler lives in package main, which a
// test elsewhere cannot import; parsing it keeps cmd/worker unchanged.
// /metrics is registered only with a metrics handler, which cmd/worker
// always passes.
func workerRoutes(file string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	consts := map[string]string{}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	var eval func(ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch x := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		case *ast.Ident:
			s, ok := consts[x.Name]
			return s, ok
		case *ast.BinaryExpr:
			a, ok1 := eval(x.X)
			b, ok2 := eval(x.Y)
			return a + b, ok1 && ok2 && x.Op == token.ADD
		}
		return "", false
	}
	var routes []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "newAdmin" {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			method := sel.Sel.Name
			switch method {
			case "GET", "POST", "PUT", "DELETE", "Any":
			default:
				return true
			}
			if p, ok := eval(call.Args[0]); ok {
				if method == "Any" {
					method = "GET"
				}
				routes = append(routes, method+" "+p)
			}
			return true
		})
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("%s: found no routes in newAdmin; update workerRoutes", file)
	}
	return routes, nil
}

// cobraCommands lists the first word of every cobra Use: in dir.
func cobraCommands(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Use" {
				if lit, ok := kv.Value.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, strings.Fields(s + " _")[0])
				}
			}
			return true
		})
	}
	return out, nil
}

// routeMatches reports whether an echo route pattern serves path.
func routeMatches(pattern, p string) bool {
	ps, qs := strings.Split(pattern, "/"), strings.Split(p, "/")
	for i, seg := range ps {
		if seg == "*" {
			return true
		}
		if i >= len(qs) {
			return false
		}
		if strings.HasPrefix(seg, ":") {
			if qs[i] == "" {
				return false
			}
			continue
		}
		if seg != qs[i] {
			return false
		}
	}
	return len(ps) == len(qs)
}

func serves(routes []string, method, p string) bool {
	for _, r := range routes {
		m, pat, _ := strings.Cut(r, " ")
		if m == method && routeMatches(pat, p) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// What the deployment files say.

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
	// sharedGroup names the services that load the same shared env file.
	sharedWith []string
}

type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func (o k8sObject) id() string { return o.file + " " + o.Kind + "/" + o.Metadata.Name }

type intOrString string

func (s *intOrString) UnmarshalYAML(n *yaml.Node) error { *s = intOrString(n.Value); return nil }

type httpGet struct {
	Path string      `yaml:"path"`
	Port intOrString `yaml:"port"`
}

type k8sProbe struct {
	HTTPGet   *httpGet `yaml:"httpGet"`
	TCPSocket *struct {
		Port intOrString `yaml:"port"`
	} `yaml:"tcpSocket"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *struct{ Name, Key string } `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct{ Name, Key string } `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		Prefix       string                 `yaml:"prefix"`
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
		Containers                    []k8sContainer `yaml:"containers"`
		InitContainers                []k8sContainer `yaml:"initContainers"`
		Volumes                       []struct {
			Name   string `yaml:"name"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
			} `yaml:"secret"`
			Projected *struct {
				Sources []struct {
					Secret *struct{ Name string } `yaml:"secret"`
				} `yaml:"sources"`
			} `yaml:"projected"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

// deployment is everything read from deploy/.
type deployment struct {
	root      string // the directory holding deploy/
	objects   []k8sObject
	procs     []proc
	composeFn string
	units     []string
	// dockerfile facts
	dockerImage     string   // ghcr.io/<owner>/<repo>
	dockerInstalled []string // /usr/local/bin/<name>
	dockerBuilt     []string // cmd names
	dockerCmd       []string
	dockerNoShell   bool
	parseErrors     []string
	kustomizations  map[string]kustomization // dir -> file
}

type kustomization struct {
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	Images     []struct {
		Name string `yaml:"name"`
	} `yaml:"images"`
	Patches []struct {
		Path   string `yaml:"path"`
		Target *struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"target"`
	} `yaml:"patches"`
}

func readDeployment(root string) *deployment {
	d := &deployment{root: root, kustomizations: map[string]kustomization{}}
	deployDir := filepath.Join(root, "deploy")
	d.readDockerfile(filepath.Join(deployDir, "Dockerfile"))
	_ = filepath.WalkDir(filepath.Join(deployDir, "kubernetes"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		d.readK8sFile(p)
		return nil
	})
	for _, name := range []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"} {
		if p := filepath.Join(deployDir, name); fileExists(p) {
			d.readCompose(p)
		}
	}
	units, _ := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	for _, u := range units {
		d.readUnit(u)
	}
	return d
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (d *deployment) rel(p string) string {
	r, err := filepath.Rel(d.root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func (d *deployment) readDockerfile(p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		d.parseErrors = append(d.parseErrors, err.Error())
		return
	}
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(b), " ")
	var lastFrom string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					lastFrom = f
					break
				}
			}
		case "RUN":
			if i := slices.Index(fields, "build"); i > 0 && fields[i-1] == "go" {
				for _, f := range fields[i+1:] {
					if strings.HasPrefix(f, "./cmd/") {
						d.dockerBuilt = append(d.dockerBuilt, strings.TrimPrefix(f, "./cmd/"))
					}
				}
			}
		case "COPY":
			if len(fields) > 2 && slices.ContainsFunc(fields, func(s string) bool { return strings.HasPrefix(s, "--from=") }) {
				dst := fields[len(fields)-1]
				for _, src := range fields[1 : len(fields)-1] {
					if strings.HasPrefix(src, "--") {
						continue
					}
					if strings.HasSuffix(dst, "/") {
						d.dockerInstalled = append(d.dockerInstalled, dst+path.Base(src))
					} else {
						d.dockerInstalled = append(d.dockerInstalled, dst)
					}
				}
			}
		case "CMD", "ENTRYPOINT":
			rest := strings.TrimSpace(line[len(fields[0]):])
			var cmd []string
			if err := yaml.Unmarshal([]byte(rest), &cmd); err == nil {
				d.dockerCmd = cmd
			} else {
				d.dockerCmd = strings.Fields(rest)
			}
		case "LABEL":
			if m := regexp.MustCompile(`org\.opencontainers\.image\.source="?https://github\.com/([^"\s]+)`).FindStringSubmatch(line); m != nil {
				d.dockerImage = "ghcr.io/" + strings.ToLower(m[1])
			}
		}
	}
	d.dockerNoShell = strings.Contains(lastFrom, "distroless") || lastFrom == "scratch"
}

func (d *deployment) readK8sFile(p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		d.parseErrors = append(d.parseErrors, err.Error())
		return
	}
	if filepath.Base(p) == "kustomization.yaml" || filepath.Base(p) == "kustomization.yml" {
		var k kustomization
		if err := yaml.Unmarshal(b, &k); err != nil {
			d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: %v", d.rel(p), err))
		}
		d.kustomizations[filepath.Dir(p)] = k
		return
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if err == io.EOF {
			break
		}
		if err != nil {
			d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: %v", d.rel(p), err))
			return
		}
		if o.Kind == "" {
			continue
		}
		o.file = d.rel(p)
		d.objects = append(d.objects, o)
		if pt, ok := podTemplateOf(o); ok {
			d.addPods(o, pt)
		}
	}
}

func podTemplateOf(o k8sObject) (podTemplate, bool) {
	var pt podTemplate
	switch o.Kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
		var s struct {
			Template podTemplate `yaml:"template"`
		}
		if err := o.Spec.Decode(&s); err != nil {
			return pt, false
		}
		return s.Template, true
	case "CronJob":
		var s struct {
			JobTemplate struct {
				Spec struct {
					Template podTemplate `yaml:"template"`
				} `yaml:"spec"`
			} `yaml:"jobTemplate"`
		}
		if err := o.Spec.Decode(&s); err != nil {
			return pt, false
		}
		return s.JobTemplate.Spec.Template, true
	}
	return pt, false
}

func (d *deployment) addPods(o k8sObject, pt podTemplate) {
	secretVolumes := map[string]bool{}
	for _, v := range pt.Spec.Volumes {
		secretVolumes[v.Name] = v.Secret != nil || (v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s struct {
			Secret *struct{ Name string } `yaml:"secret"`
		}) bool {
			return s.Secret != nil
		}))
	}
	for _, c := range append(slices.Clone(pt.Spec.InitContainers), pt.Spec.Containers...) {
		p := proc{
			id: o.id() + " container " + c.Name, file: o.file, image: c.Image,
			command: append(slices.Clone(c.Command), c.Args...), grace: -1,
			portNames: map[string]int{}, labels: pt.Metadata.Labels,
		}
		if pt.Spec.TerminationGracePeriodSeconds != nil {
			p.grace = time.Duration(*pt.Spec.TerminationGracePeriodSeconds) * time.Second
		}
		for _, port := range c.Ports {
			p.ports = append(p.ports, port.ContainerPort)
			if port.Name != "" {
				p.portNames[port.Name] = port.ContainerPort
			}
		}
		for _, e := range c.Env {
			s := envSetting{name: e.Name, value: e.Value, literal: e.ValueFrom == nil, origin: "env"}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				s.literal = true // a ConfigMap is as visible as the manifest
				s.value = d.configMapValue(e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
			}
			p.env = append(p.env, s)
		}
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				cm, ok := d.object("ConfigMap", ef.ConfigMapRef.Name)
				if !ok {
					p.envUnknown = append(p.envUnknown, "ConfigMap "+ef.ConfigMapRef.Name+" (not in deploy/)")
				}
				for k, v := range cm.Data {
					p.env = append(p.env, envSetting{name: ef.Prefix + k, value: v, literal: true, origin: "envFrom ConfigMap " + cm.Metadata.Name})
				}
			case ef.SecretRef != nil:
				p.envUnknown = append(p.envUnknown, "Secret "+ef.SecretRef.Name)
			}
		}
		for _, pr := range []struct {
			kind string
			p    *k8sProbe
		}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}, {"startup", c.StartupProbe}} {
			switch {
			case pr.p == nil:
			case pr.p.HTTPGet != nil:
				p.probes = append(p.probes, probe{pr.kind, pr.p.HTTPGet.Path, string(pr.p.HTTPGet.Port)})
			case pr.p.TCPSocket != nil:
				p.probes = append(p.probes, probe{pr.kind, "", string(pr.p.TCPSocket.Port)})
			case pr.p.Exec != nil:
				p.probes = append(p.probes, probe{pr.kind + "-exec", strings.Join(pr.p.Exec.Command, " "), ""})
			}
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if s := c.Lifecycle.PreStop.Sleep; s != nil {
				p.preStop = s.Seconds
			}
			if e := c.Lifecycle.PreStop.Exec; e != nil {
				p.preExec = e.Command
			}
		}
		for _, m := range c.VolumeMounts {
			p.mounts = append(p.mounts, mount{m.MountPath, secretVolumes[m.Name]})
		}
		d.procs = append(d.procs, p)
	}
}

func (d *deployment) object(kind, name string) (k8sObject, bool) {
	for _, o := range d.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

func (d *deployment) configMapValue(name, key string) string {
	if cm, ok := d.object("ConfigMap", name); ok {
		return cm.Data[key]
	}
	return ""
}

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
		DependsOn yaml.Node `yaml:"depends_on"`
	} `yaml:"services"`
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
	names := make([]string, 0, len(cf.Services))
	for n := range cf.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
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
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
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
		if s.Grace != "" {
			if g, err := time.ParseDuration(s.Grace); err == nil {
				pr.grace = g
			} else {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: stop_grace_period %q: %v", pr.id, s.Grace, err))
			}
		} else {
			pr.grace = 10 * time.Second // Compose's default
		}
		d.procs = append(d.procs, pr)
	}
}

// readUnit reads a systemd unit's ExecStart=, Environment=, EnvironmentFile=
// and TimeoutStopSec=. A template's %i is taken as instance 1.
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
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fromFiles = append(fromFiles, envSetting{name: k, value: vals[k], shared: true, origin: "EnvironmentFile=" + val + " (" + d.rel(used) + ")"})
			}
		case "TimeoutStopSec":
			if g, err := parseSystemdSpan(val); err == nil {
				pr.grace = g
			} else {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: TimeoutStopSec=%s: %v", rel, val, err))
			}
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

// ---------------------------------------------------------------------------
// The checks. Each returns the problems it found under a check name, so the
// test can run them as subtests and TestChecksCatchDrift can assert on them.

type findings map[string][]string

func (f findings) add(check, format string, args ...any) {
	f[check] = append(f[check], fmt.Sprintf(format, args...))
}

// touch records that a check ran, so that a passing check is a subtest too.
func (f findings) touch(check string) {
	if _, ok := f[check]; !ok {
		f[check] = nil
	}
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

func (d *deployment) check(c codeFacts) findings {
	f := findings{}
	for _, e := range d.parseErrors {
		f.add("parse", "%s", e)
	}
	f.touch("parse")
	d.checkCoverage(c, f)
	d.checkDockerfile(c, f)
	for _, p := range d.procs {
		d.checkProc(c, p, f)
	}
	d.checkK8sObjects(c, f)
	d.checkKustomizations(f)
	return f
}

func (d *deployment) checkCoverage(c codeFacts, f findings) {
	const check = "coverage"
	f.touch(check)
	if d.composeFn == "" {
		f.add(check, "deploy/compose.yaml is missing")
	}
	var k8sBins, sysBins []string
	for _, p := range d.procs {
		b := d.binaryOf(c, p)
		switch {
		case strings.HasPrefix(p.file, "deploy/kubernetes/"):
			k8sBins = append(k8sBins, b)
		case strings.HasPrefix(p.file, "deploy/systemd/"):
			sysBins = append(sysBins, b)
		}
	}
	for _, b := range configdoc.Binaries {
		if !slices.Contains(k8sBins, b) {
			f.add(check, "no Kubernetes workload runs %s", b)
		}
		if !slices.Contains(sysBins, b) {
			f.add(check, "no systemd unit runs %s", b)
		}
	}
}

func (d *deployment) checkDockerfile(c codeFacts, f findings) {
	check := "deploy/Dockerfile"
	f.touch(check + "/builds-every-binary")
	f.touch(check + "/image-name")
	for _, b := range configdoc.Binaries {
		if !slices.Contains(d.dockerBuilt, b) {
			f.add(check+"/builds-every-binary", "go build does not build ./cmd/%s", b)
		}
		if !slices.Contains(d.dockerInstalled, "/usr/local/bin/"+b) {
			f.add(check+"/builds-every-binary", "/usr/local/bin/%s is not copied into the final image", b)
		}
	}
	for _, b := range d.dockerBuilt {
		if !slices.Contains(c.cmds, b) {
			f.add(check+"/builds-every-binary", "builds ./cmd/%s, which does not exist", b)
		}
	}
	if len(d.dockerCmd) == 0 || !slices.Contains(d.dockerInstalled, d.dockerCmd[0]) {
		f.add(check+"/builds-every-binary", "CMD %v names no installed binary", d.dockerCmd)
	}
	want := "ghcr.io/" + strings.TrimPrefix(c.module, "github.com/")
	if d.dockerImage != want {
		f.add(check+"/image-name", "org.opencontainers.image.source gives image %q; the module %s gives %q", d.dockerImage, c.module, want)
	}
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
				f.add(id+"/probes", "%s probe runs %q; the image has no shell or tools, use httpGet", strings.TrimSuffix(pr.kind, "-exec"), pr.path)
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

// selected returns the pods (procs) of Kubernetes workloads whose labels
// match sel.
func (d *deployment) selected(sel map[string]string) []proc {
	var out []proc
	for _, p := range d.procs {
		if p.labels == nil || len(sel) == 0 {
			continue
		}
		match := true
		for k, v := range sel {
			match = match && p.labels[k] == v
		}
		if match {
			out = append(out, p)
		}
	}
	return out
}

func portIn(ps []proc, port intOrString) bool {
	for _, p := range ps {
		if n, ok := p.portNames[string(port)]; ok && n > 0 {
			return true
		}
		if n, err := strconv.Atoi(string(port)); err == nil && slices.Contains(p.ports, n) {
			return true
		}
	}
	return false
}

type servicePort struct {
	Name       string      `yaml:"name"`
	Port       int         `yaml:"port"`
	TargetPort intOrString `yaml:"targetPort"`
}

func (d *deployment) checkK8sObjects(c codeFacts, f findings) {
	services := map[string][]servicePort{}
	for _, o := range d.objects {
		id := o.id()
		switch o.Kind {
		case "Secret":
			f.touch("deploy/kubernetes/no-committed-secrets")
			if len(o.Data)+len(o.StringData) > 0 {
				f.add("deploy/kubernetes/no-committed-secrets", "%s holds secret data; reference Secrets by name instead", id)
			}
		case "Service":
			var s struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []servicePort     `yaml:"ports"`
			}
			_ = o.Spec.Decode(&s)
			services[o.Metadata.Name] = s.Ports
			pods := d.selected(s.Selector)
			f.touch(id + "/selects-pods")
			if len(pods) == 0 {
				f.add(id+"/selects-pods", "selector %v matches no pod template", s.Selector)
				continue
			}
			f.touch(id + "/target-port")
			for _, sp := range s.Ports {
				tp := sp.TargetPort
				if tp == "" {
					tp = intOrString(strconv.Itoa(sp.Port))
				}
				if !portIn(pods, tp) {
					f.add(id+"/target-port", "port %s targets %s, which no selected container exposes", sp.Name, tp)
				}
			}
		}
	}
	for _, o := range d.objects {
		id := o.id()
		switch o.Kind {
		case "Ingress":
			var s struct {
				Rules []struct {
					HTTP struct {
						Paths []struct {
							Path    string `yaml:"path"`
							Backend struct {
								Service struct {
									Name string `yaml:"name"`
									Port struct {
										Number int    `yaml:"number"`
										Name   string `yaml:"name"`
									} `yaml:"port"`
								} `yaml:"service"`
							} `yaml:"backend"`
						} `yaml:"paths"`
					} `yaml:"http"`
				} `yaml:"rules"`
			}
			_ = o.Spec.Decode(&s)
			f.touch(id + "/backend")
			for _, r := range s.Rules {
				for _, p := range r.HTTP.Paths {
					be := p.Backend.Service
					ports, ok := services[be.Name]
					if !ok {
						f.add(id+"/backend", "path %s goes to Service %s, which does not exist", p.Path, be.Name)
						continue
					}
					if !slices.ContainsFunc(ports, func(sp servicePort) bool {
						return (be.Port.Number != 0 && sp.Port == be.Port.Number) || (be.Port.Name != "" && sp.Name == be.Port.Name)
					}) {
						f.add(id+"/backend", "path %s goes to port %d%s of Service %s, which has no such port", p.Path, be.Port.Number, be.Port.Name, be.Name)
					}
					// The public path must reach the webhook route, and only it.
					probe := strings.TrimSuffix(p.Path, "/") + "/example"
					if !serves(c.routes[configdoc.Receiver], http.MethodPost, probe) {
						f.add(id+"/backend", "path %s does not lead to a receiver route (%v)", p.Path, c.routes[configdoc.Receiver])
					}
				}
			}
		case "HorizontalPodAutoscaler", "PodDisruptionBudget", "ScaledObject":
			f.touch(id + "/target")
			var s struct {
				ScaleTargetRef *struct {
					Kind string `yaml:"kind"`
					Name string `yaml:"name"`
				} `yaml:"scaleTargetRef"`
				Selector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			}
			_ = o.Spec.Decode(&s)
			switch {
			case s.ScaleTargetRef != nil:
				kind := s.ScaleTargetRef.Kind
				if kind == "" {
					kind = "Deployment"
				}
				if _, ok := d.object(kind, s.ScaleTargetRef.Name); !ok {
					f.add(id+"/target", "scales %s/%s, which does not exist", kind, s.ScaleTargetRef.Name)
				}
			case s.Selector != nil:
				if len(d.selected(s.Selector.MatchLabels)) == 0 {
					f.add(id+"/target", "selector %v matches no pod template", s.Selector.MatchLabels)
				}
			}
		case "ServiceMonitor":
			var s struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
				Endpoints []struct {
					Port string `yaml:"port"`
					Path string `yaml:"path"`
				} `yaml:"endpoints"`
			}
			_ = o.Spec.Decode(&s)
			f.touch(id + "/endpoints")
			var matched []string
			for _, svc := range d.objects {
				if svc.Kind != "Service" {
					continue
				}
				ok := len(s.Selector.MatchLabels) > 0
				for k, v := range s.Selector.MatchLabels {
					ok = ok && svc.Metadata.Labels[k] == v
				}
				if ok {
					matched = append(matched, svc.Metadata.Name)
				}
			}
			if len(matched) == 0 {
				f.add(id+"/endpoints", "selector %v matches no Service's labels", s.Selector.MatchLabels)
			}
			for _, svcName := range matched {
				svc, _ := d.object("Service", svcName)
				var ss struct {
					Selector map[string]string `yaml:"selector"`
				}
				_ = svc.Spec.Decode(&ss)
				pods := d.selected(ss.Selector)
				for _, ep := range s.Endpoints {
					if !slices.ContainsFunc(services[svcName], func(sp servicePort) bool { return sp.Name == ep.Port }) {
						f.add(id+"/endpoints", "endpoint port %q is not a named port of Service %s", ep.Port, svcName)
					}
					p := cmpOr(ep.Path, "/metrics")
					for _, pod := range pods {
						if b := d.binaryOf(c, pod); b != "" && !serves(c.routes[b], http.MethodGet, p) {
							f.add(id+"/endpoints", "scrape path %s is not a GET route of the %s", p, b)
						}
					}
				}
			}
		case "NetworkPolicy":
			var s struct {
				PodSelector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				Ingress []struct {
					Ports []struct {
						Port intOrString `yaml:"port"`
					} `yaml:"ports"`
				} `yaml:"ingress"`
			}
			_ = o.Spec.Decode(&s)
			f.touch(id + "/ports")
			pods := d.selected(s.PodSelector.MatchLabels)
			if len(pods) == 0 {
				f.add(id+"/ports", "podSelector %v matches no pod template", s.PodSelector.MatchLabels)
			}
			for _, in := range s.Ingress {
				for _, p := range in.Ports {
					if !portIn(pods, p.Port) {
						f.add(id+"/ports", "allows port %s, which no selected container exposes", p.Port)
					}
				}
			}
		}
	}
	// Images named in kustomizations are Hookline's.
	for dir, k := range d.kustomizations {
		for _, img := range k.Images {
			check := d.rel(filepath.Join(dir, "kustomization.yaml")) + "/images"
			f.touch(check)
			if !d.isHooklineImage(img.Name) {
				f.add(check, "images: %s is not %s, the image deploy/Dockerfile builds", img.Name, d.dockerImage)
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkKustomizations: resources and components exist, every manifest in a
// kustomization's directory is listed, and patch targets exist.
func (d *deployment) checkKustomizations(f findings) {
	dirs := make([]string, 0, len(d.kustomizations))
	for dir := range d.kustomizations {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		k := d.kustomizations[dir]
		check := d.rel(filepath.Join(dir, "kustomization.yaml")) + "/references"
		f.touch(check)
		listed := map[string]bool{}
		for _, r := range append(slices.Clone(k.Resources), k.Components...) {
			p := filepath.Join(dir, r)
			if !fileExists(p) {
				f.add(check, "%s does not exist", r)
			}
			listed[filepath.Clean(p)] = true
		}
		for _, pt := range k.Patches {
			if pt.Path != "" && !fileExists(filepath.Join(dir, pt.Path)) {
				f.add(check, "patch %s does not exist", pt.Path)
			}
			if pt.Target != nil && pt.Target.Name != "" {
				if _, ok := d.object(pt.Target.Kind, pt.Target.Name); !ok {
					f.add(check, "patch target %s/%s does not exist", pt.Target.Kind, pt.Target.Name)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range files {
			if base := filepath.Base(p); base != "kustomization.yaml" && !listed[filepath.Clean(p)] {
				f.add(check, "%s is in the directory but not in resources: it is never deployed", base)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The tests.

func TestManifests(t *testing.T) {
	c := loadFacts(t)
	d := readDeployment(repoRoot(t))
	found := d.check(c)
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			for _, msg := range found[n] {
				t.Error(msg)
			}
		})
	}
}

// TestRoutesAreRead guards the route readers themselves: if they found
// nothing, every probe check would fail for the wrong reason, or pass
// vacuously.
func TestRoutesAreRead(t *testing.T) {
	c := loadFacts(t)
	for _, bin := range []string{configdoc.Receiver, configdoc.Worker} {
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			if !serves(c.routes[bin], http.MethodGet, p) {
				t.Errorf("%s: GET %s not found in %v", bin, p, c.routes[bin])
			}
		}
	}
	if !serves(c.routes[configdoc.Receiver], http.MethodPost, "/api/webhooks/stripe") {
		t.Errorf("receiver: POST /api/webhooks/:source not found in %v", c.routes[configdoc.Receiver])
	}
	if !serves(c.routes[configdoc.Worker], http.MethodGet, "/riverui/jobs") {
		t.Errorf("worker: /riverui/* not found in %v", c.routes[configdoc.Worker])
	}
	if !slices.Contains(c.hookctlCommands, "migrate") {
		t.Errorf("hookctl commands %v lack migrate", c.hookctlCommands)
	}
}

// TestChecksCatchDrift copies deploy/ and breaks one fact at a time: each
// mutation must be reported by the check named.
func TestChecksCatchDrift(t *testing.T) {
	c := loadFacts(t)
	root := repoRoot(t)
	mutations := []struct {
		name, file, old, new, check string
	}{
		{"unknown variable", "deploy/kubernetes/base/receiver-deployment.yaml",
			"- name: SHUTDOWN_TIMEOUT", "- name: SHUTDOWN_TIMEOUTS", "receiver/env-known"},
		{"variable of another binary", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: WORKER_SOFT_STOP_TIMEOUT", "- name: INGEST_MODE", "worker/env-known"},
		{"_FILE form hookctl does not read", "deploy/kubernetes/base/migrate-job.yaml",
			"- name: DATABASE_URL\n", "- name: DATABASE_URL_FILE\n", "migrate/env-known"},
		{"required variable missing", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: DATABASE_URL\n", "- name: DATABASE_MAX_CONNS\n", "worker/env-required"},
		{"receiver without sources", "deploy/kubernetes/base/receiver-deployment.yaml",
			"- name: STRIPE_WEBHOOK_SECRET_FILE", "- name: MAX_BODY_BYTES", "receiver/env-required"},
		{"probe path not routed", "deploy/kubernetes/base/receiver-deployment.yaml",
			"path: /readyz", "path: /ready", "receiver/probes"},
		{"worker probe path not routed", "deploy/kubernetes/base/worker-deployment.yaml",
			"path: /healthz", "path: /health", "worker/probes"},
		{"probe port", "deploy/kubernetes/base/worker-deployment.yaml",
			"port: 9091\n            periodSeconds: 10\n            timeoutSeconds: 3", "port: 9090\n            periodSeconds: 10\n            timeoutSeconds: 3", "worker/probes"},
		{"container port differs from RECEIVER_ADDR", "deploy/kubernetes/base/receiver-deployment.yaml",
			`value: ":8080"`, `value: ":8081"`, "receiver/ports"},
		{"Service targetPort", "deploy/kubernetes/base/receiver-service.yaml",
			"targetPort: 8080", "targetPort: 8081", "Service/hookline-receiver/target-port"},
		{"image", "deploy/kubernetes/base/worker-deployment.yaml",
			"image: ghcr.io/hookline/hookline:dev", "image: ghcr.io/hookline/hookline-worker:dev", "worker/image"},
		{"binary", "deploy/kubernetes/base/worker-deployment.yaml",
			`command: ["/usr/local/bin/worker"]`, `command: ["/usr/local/bin/workers"]`, "worker/binary"},
		{"hookctl subcommand", "deploy/kubernetes/base/migrate-job.yaml",
			`hookctl", "migrate"]`, `hookctl", "migrations"]`, "migrate/binary"},
		{"worker grace period", "deploy/kubernetes/base/worker-deployment.yaml",
			"terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20", "worker/shutdown-grace"},
		{"receiver grace period", "deploy/kubernetes/base/receiver-deployment.yaml",
			"terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 30", "receiver/shutdown-grace"},
		{"secret written in a manifest", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: RIVERUI_PASSWORD\n              valueFrom:", "- name: RIVERUI_PASSWORD\n              value: hunter2\n              x-valueFrom:", "worker/secrets-not-literal"},
		{"Ingress backend port", "deploy/kubernetes/base/receiver-ingress.yaml",
			"number: 8080", "number: 80", "Ingress/hookline-receiver/backend"},
		{"kustomization lists a missing file", "deploy/kubernetes/base/kustomization.yaml",
			"- worker-pdb.yaml", "- worker-pdbs.yaml", "base/kustomization.yaml/references"},
		{"compose grace period", "deploy/compose.yaml",
			"stop_grace_period: 35s\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n\n  worker:", "stop_grace_period: 5s\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n\n  worker:", "services.receiver/shutdown-grace"},
		{"compose unknown variable", "deploy/compose.yaml",
			"WORKER_CONCURRENCY:", "WORKER_CONCURENCY:", "services.worker/env-known"},
		{"compose postgres variable", "deploy/compose.yaml",
			"POSTGRES_DB: hookline", "POSTGRES_DB: hookline\n      DATABASE_URLS: x", "services.postgres/env-known"},
		{"systemd binary", "deploy/systemd/hookline-receiver.service",
			"ExecStart=/usr/local/bin/receiver", "ExecStart=/usr/local/bin/reciever", "hookline-receiver.service/binary"},
		{"systemd grace", "deploy/systemd/hookline-worker@.service",
			"TimeoutStopSec=35s", "TimeoutStopSec=10s", "hookline-worker@.service/shutdown-grace"},
		{"systemd unknown variable", "deploy/systemd/hookline-receiver.service",
			"Environment=BANK_WEBHOOK_SECRET_FILE", "Environment=BANK_SECRET_FILE", "hookline-receiver.service/env-known"},
		{"systemd Environment= overridden by the shared file", "deploy/hookline.env.example",
			"RECEIVER_ADDR=:8080", "RECEIVER_ADDR=:8080\nWORKER_ADDR=:9091", "hookline-worker@.service/env-not-overridden"},
		{"liveness on /readyz", "deploy/kubernetes/base/worker-deployment.yaml",
			"path: /healthz", "path: /readyz", "worker/probes"},
		{"preStop exec in a distroless image", "deploy/kubernetes/base/receiver-deployment.yaml",
			"preStop:\n              sleep:\n                seconds: 5", "preStop:\n              exec:\n                command: [\"/bin/sleep\", \"5\"]", "receiver/prestop"},
		{"ServiceMonitor port", "deploy/kubernetes/components/monitoring/servicemonitor.yaml",
			"port: admin", "port: metrics", "ServiceMonitor/hookline-worker/endpoints"},
		{"NetworkPolicy port", "deploy/kubernetes/base/networkpolicy.yaml",
			"port: 9091", "port: 9092", "NetworkPolicy/hookline-worker-admin/ports"},
		{"patch target", "deploy/kubernetes/overlays/staging/kustomization.yaml",
			"name: hookline-worker\n    patch", "name: hookline-workers\n    patch", "staging/kustomization.yaml/references"},
		{"committed Secret", "deploy/kubernetes/base/receiver-service.yaml",
			"apiVersion: v1\nkind: Service", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  url: postgres://u:p@db/x\n---\napiVersion: v1\nkind: Service", "no-committed-secrets"},
		{"both X and X_FILE", "deploy/kubernetes/base/receiver-deployment.yaml",
			"- name: SHUTDOWN_TIMEOUT", "- name: BANK_WEBHOOK_SECRET\n              valueFrom: {secretKeyRef: {name: s, key: k}}\n            - name: SHUTDOWN_TIMEOUT", "receiver/env-both-forms"},
		{"_FILE outside a Secret mount", "deploy/kubernetes/base/receiver-deployment.yaml",
			"value: /etc/hookline/secrets/stripe", "value: /tmp/stripe", "receiver/file-env-mounted"},
		{"Dockerfile image name", "deploy/Dockerfile",
			"https://github.com/hookline/hookline", "https://github.com/hookline/hooks", "deploy/Dockerfile/image-name"},
		{"kustomization image", "deploy/kubernetes/overlays/production/kustomization.yaml",
			"- name: ghcr.io/hookline/hookline", "- name: ghcr.io/hookline/hooklin", "production/kustomization.yaml/images"},
		{"HPA target", "deploy/kubernetes/base/receiver-hpa.yaml",
			"name: hookline-receiver\n  minReplicas", "name: hookline-recv\n  minReplicas", "HorizontalPodAutoscaler/hookline-receiver/target"},
		{"Service selector", "deploy/kubernetes/base/receiver-service.yaml",
			"app.kubernetes.io/component: receiver\n  ports:", "app.kubernetes.io/component: recv\n  ports:", "Service/hookline-receiver/selects-pods"},
		{"Ingress path off the webhook route", "deploy/kubernetes/base/receiver-ingress.yaml",
			"path: /api/webhooks/", "path: /webhooks/", "Ingress/hookline-receiver/backend"},
		{"Dockerfile stops building a binary", "deploy/Dockerfile",
			"./cmd/receiver ./cmd/worker ./cmd/hookctl", "./cmd/receiver ./cmd/worker", "deploy/Dockerfile/builds-every-binary"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, filepath.Join(root, "deploy"), filepath.Join(dir, "deploy"))
			target := filepath.Join(dir, m.file)
			b, err := os.ReadFile(target)
			if err != nil {
				t.Skipf("%s not present: %v", m.file, err)
			}
			if !strings.Contains(string(b), m.old) {
				t.Skipf("%s no longer contains %q; update the mutation", m.file, m.old)
			}
			if err := os.WriteFile(target, []byte(strings.Replace(string(b), m.old, m.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			found := readDeployment(dir).check(c)
			var hits []string
			for name, msgs := range found {
				if strings.Contains(name, m.check) && len(msgs) > 0 {
					hits = append(hits, msgs...)
				}
			}
			if len(hits) == 0 {
				t.Fatalf("no check matching %q reported the mutation; all findings: %v", m.check, nonEmpty(found))
			}
			t.Logf("reported: %s", strings.Join(hits, "; "))
		})
	}
}

func nonEmpty(f findings) map[string][]string {
	out := map[string][]string{}
	for k, v := range f {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
