// deploy/kubernetes/: reading the manifests into objects, kustomizations
// and one process per container of every pod template.

package deploy_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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
			SecretKeyRef     *struct{ Name, Key string } `yaml:"secretKeyRef"`
			ConfigMapKeyRef  *struct{ Name, Key string } `yaml:"configMapKeyRef"`
			ResourceFieldRef *struct {
				ContainerName string      `yaml:"containerName"`
				Resource      string      `yaml:"resource"`
				Divisor       intOrString `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
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
	Resources struct {
		Limits   map[string]intOrString `yaml:"limits"`
		Requests map[string]intOrString `yaml:"requests"`
	} `yaml:"resources"`
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
	all := append(slices.Clone(pt.Spec.InitContainers), pt.Spec.Containers...)
	for _, c := range all {
		p := proc{
			id: o.id() + " container " + c.Name, file: o.file, image: c.Image,
			command: append(slices.Clone(c.Command), c.Args...), grace: -1,
			portNames: map[string]int{}, labels: pt.Metadata.Labels,
		}
		if pt.Spec.TerminationGracePeriodSeconds != nil {
			p.grace = time.Duration(*pt.Spec.TerminationGracePeriodSeconds) * time.Second
		}
		if q, ok := c.Resources.Limits["memory"]; ok {
			n, err := parseK8sQuantity(string(q))
			if err != nil {
				d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: resources.limits.memory: %v", p.id, err))
			}
			p.memLimit, p.memLimitFrom = n, "resources.limits.memory "+string(q)
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
			if r := e.ValueFrom; r != nil && r.ResourceFieldRef != nil {
				s.literal = true // computed from the manifest
				s.value = d.resourceFieldValue(p.id, c.Name, all, r.ResourceFieldRef.ContainerName, r.ResourceFieldRef.Resource, string(r.ResourceFieldRef.Divisor))
				s.origin = "env valueFrom.resourceFieldRef " + r.ResourceFieldRef.Resource
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

// resourceFieldValue is the value the downward API gives a variable for a
// memory resource of a container (this one if containerName is empty): the
// quantity divided by divisor (default 1), rounded up, as a bare integer.
// "" for other resources, or a memory resource the manifest does not set
// (Kubernetes would then use the node's allocatable memory).
func (d *deployment) resourceFieldValue(id, self string, all []k8sContainer, containerName, resource, divisor string) string {
	name := cmpOr(containerName, self)
	i := slices.IndexFunc(all, func(c k8sContainer) bool { return c.Name == name })
	kind, res, _ := strings.Cut(resource, ".")
	if i < 0 || res != "memory" || (kind != "limits" && kind != "requests") {
		return ""
	}
	q, ok := all[i].Resources.Limits["memory"]
	if kind == "requests" {
		q, ok = all[i].Resources.Requests["memory"]
	}
	if !ok {
		return ""
	}
	n, err := parseK8sQuantity(string(q))
	if err != nil {
		return "" // malformed: an empty GOMEMLIMIT, which memory-limit reports
	}
	div, err := parseK8sQuantity(cmpOr(divisor, "1"))
	if err != nil || div <= 0 {
		d.parseErrors = append(d.parseErrors, fmt.Sprintf("%s: resourceFieldRef divisor %q is not a positive quantity", id, divisor))
		return ""
	}
	return strconv.FormatInt((n+div-1)/div, 10)
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
