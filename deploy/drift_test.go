// TestChecksCatchDrift: mutations of a copy of deploy/ that each check must
// report.

package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
			"- name: DATABASE_URL\n", "- name: USER_FILE\n", "migrate/env-known"},
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
		{"compose healthcheck path not routed", "deploy/compose.yaml",
			"http://127.0.0.1:8080/readyz", "http://127.0.0.1:8080/ready", "services.receiver/probes"},
		{"compose healthcheck port", "deploy/compose.yaml",
			"http://127.0.0.1:9091/readyz", "http://127.0.0.1:9092/readyz", "services.worker/probes"},
		{"compose healthcheck needs a shell", "deploy/compose.yaml",
			`["CMD", "/usr/local/bin/hookctl", "probe", "http://127.0.0.1:9091/readyz"]`, `["CMD-SHELL", "curl -f http://127.0.0.1:9091/readyz"]`, "services.worker/probes"},
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
		{"GOMEMLIMIT removed", "deploy/kubernetes/base/receiver-deployment.yaml",
			"            - name: GOMEMLIMIT\n              value: \"400MiB\"\n", "", "receiver/memory-limit"},
		{"GOMEMLIMIT above the memory limit", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: GOMEMLIMIT\n              value: \"400MiB\"", "- name: GOMEMLIMIT\n              value: \"600MiB\"", "worker/memory-limit"},
		{"GOMEMLIMIT in a unit the runtime rejects", "deploy/kubernetes/base/receiver-deployment.yaml",
			"- name: GOMEMLIMIT\n              value: \"400MiB\"", "- name: GOMEMLIMIT\n              value: \"400MB\"", "receiver/memory-limit"},
		{"the receiver's GOGC dropped beside its GOMEMLIMIT", "deploy/kubernetes/base/receiver-deployment.yaml",
			"            - name: GOGC\n              value: \"400\"\n", "", "receiver/memory-limit"},
		{"the systemd receiver's GOGC dropped", "deploy/systemd/hookline-receiver.service",
			"Environment=GOGC=400\n", "", "hookline-receiver.service/memory-limit"},
		{"GOMEMLIMIT from the downward API is the whole limit", "deploy/kubernetes/base/receiver-deployment.yaml",
			"- name: GOMEMLIMIT\n              value: \"400MiB\"", "- name: GOMEMLIMIT\n              valueFrom:\n                resourceFieldRef:\n                  resource: limits.memory", "receiver/memory-limit"},
		{"GOMEMLIMIT from the downward API in MiB, read as bytes", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: GOMEMLIMIT\n              value: \"400MiB\"", "- name: GOMEMLIMIT\n              valueFrom:\n                resourceFieldRef:\n                  resource: limits.memory\n                  divisor: 1Mi", "worker/memory-limit"},
		{"GOMEMLIMIT_FILE is not a runtime variable", "deploy/kubernetes/base/worker-deployment.yaml",
			"- name: GOMEMLIMIT\n", "- name: GOMEMLIMIT_FILE\n", "worker/env-known"},
		{"compose memory limit lowered under GOMEMLIMIT", "deploy/compose.yaml",
			"# Per replica.\n      resources:\n        limits:\n          memory: 512M", "# Per replica.\n      resources:\n        limits:\n          memory: 384M", "services.worker/memory-limit"},
		{"compose bodies in flight above GOMEMLIMIT", "deploy/compose.yaml",
			"GOMEMLIMIT: \"400MiB\"\n    # Compose v2", "GOMEMLIMIT: \"400MiB\"\n      MAX_BODY_BYTES_IN_FLIGHT: \"536870912\"\n    # Compose v2", "services.receiver/memory-limit"},
		{"systemd MemoryMax= under GOMEMLIMIT", "deploy/systemd/hookline-receiver.service",
			"MemoryMax=512M", "MemoryMax=384M", "hookline-receiver.service/memory-limit"},
		{"systemd GOMEMLIMIT removed", "deploy/systemd/hookline-worker@.service",
			"Environment=GOMEMLIMIT=400MiB\n", "", "hookline-worker@.service/memory-limit"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, filepath.Join(root, "deploy"), filepath.Join(dir, "deploy"))
			target := filepath.Join(dir, m.file)
			b, err := os.ReadFile(target)
			if err != nil {
				t.Fatalf("%s not present: %v", m.file, err)
			}
			if !strings.Contains(string(b), m.old) {
				t.Fatalf("%s no longer contains %q; update the mutation", m.file, m.old)
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
