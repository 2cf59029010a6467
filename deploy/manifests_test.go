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
//   - every receiver and worker sets GOMEMLIMIT in the runtime's format,
//     below its memory limit (resources.limits.memory, Compose's
//     mem_limit or deploy.resources.limits.memory, MemoryMax=);
//   - kustomizations reference files and objects that exist, and no Secret
//     is committed.
//
// Each check is a subtest named after the file and object it inspects, so a
// failure says what drifted where. TestChecksCatchDrift mutates a copy of
// deploy/ to prove that each check can fail.
package deploy_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/configdoc"
)

// This file holds what the deployment files say (deployment, readDeployment),
// the findings the checks report, and the tests that run them. The readers
// and checks live in the per-concern files:
// facts_test.go (the code side), dockerfile_test.go, compose_test.go,
// systemd_test.go, kubernetes_test.go (reading the manifests),
// processes_test.go (checks per process), memory_test.go (memory limits
// and GOMEMLIMIT), kubernetes_checks_test.go
// (Services, Ingress, autoscalers, monitoring, policies, kustomizations)
// and drift_test.go (TestChecksCatchDrift).

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

func (d *deployment) rel(p string) string {
	r, err := filepath.Rel(d.root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
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
