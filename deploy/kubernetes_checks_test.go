// Checks of the Kubernetes objects that are not workloads: Services,
// Ingress, autoscalers and PodDisruptionBudgets, ServiceMonitors,
// NetworkPolicies, kustomization images and kustomization references.

package deploy_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hookline/hookline/internal/configdoc"
)

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
