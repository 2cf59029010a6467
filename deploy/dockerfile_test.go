// deploy/Dockerfile: what it builds, installs and runs, and the image name
// its source label gives.

package deploy_test

import (
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookline/hookline/internal/configdoc"
)

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
