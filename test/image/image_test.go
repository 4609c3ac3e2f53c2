package image

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// image is the image under test: $VNODEDIAG_IMAGE (`make image-test` sets
// it to the one `make image` just built).
func image(t *testing.T) (podman, ref string) {
	t.Helper()
	ref = os.Getenv("VNODEDIAG_IMAGE")
	if ref == "" {
		t.Skip("VNODEDIAG_IMAGE is not set: `make image-test` builds the image and runs this test")
	}
	p, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (Debian package podman)")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: the image test runs rootful podman")
	}
	return p, ref
}

func podman(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// runArgs start `podman run` so that it works in a container too: explicit
// open-file and process limits (podman's defaults are above what a nested
// container may set: "setrlimit RLIMIT_NOFILE: Operation not permitted"),
// and runc where it is installed (Debian's crun refuses hybrid cgroups:
// "cgroups in hybrid mode not supported").
func runArgs() []string {
	args := []string{"run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if _, err := exec.LookPath("runc"); err == nil {
		args = append([]string{"--runtime", "runc"}, args...)
	}
	return args
}

// TestImageRuns: the image runs `version` and `checks` as a non-root user
// with no network, and its root filesystem read-only.
func TestImageRuns(t *testing.T) {
	bin, ref := image(t)
	run := func(args ...string) string {
		t.Helper()
		full := append(append(runArgs(), "--read-only", "--cap-drop=ALL", ref), args...)
		out, errOut, err := podman(t, bin, full...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s%s", strings.Join(full, " "), err, out, errOut)
		}
		return out
	}
	if out := run("version"); !strings.HasPrefix(out, "vnodediag ") || !strings.Contains(out, "linux/") {
		t.Errorf("version: %q", out)
	}
	if out := run("checks"); !strings.Contains(out, "bgp.session") || !strings.Contains(out, "k8s.") {
		t.Errorf("checks: %q", out)
	}
}

// TestImageContents: non-root user, the binary as entrypoint, no shell, CA
// certificates.
func TestImageContents(t *testing.T) {
	bin, ref := image(t)
	out, errOut, err := podman(t, bin, "image", "inspect", ref)
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, errOut)
	}
	var info []struct {
		Config struct {
			User       string
			Entrypoint []string
			Env        []string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	c := info[0].Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/vnodediag" {
		t.Errorf("entrypoint %v", c.Entrypoint)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash"} {
		out, errOut, err := podman(t, bin, append(runArgs(), "--entrypoint", sh, ref, "-c", "true")...)
		if err == nil {
			t.Errorf("the image has a shell %s: %s", sh, out)
		} else if !strings.Contains(errOut, "no such file or directory") {
			t.Errorf("running %s failed otherwise than for a missing file: %s", sh, errOut)
		}
	}
	// The CA bundle is there: a file mounted over nothing else shows its size.
	mnt, errOut, err := podman(t, bin, "image", "mount", ref)
	if err != nil {
		t.Skipf("podman image mount: %v %s (contents not listed)", err, errOut)
	}
	defer func() { _, _, _ = podman(t, bin, "image", "unmount", ref) }()
	root := strings.TrimSpace(mnt)
	var files []string
	_ = walk(root, "", &files)
	want := []string{"/etc/ssl/certs/ca-certificates.crt", "/usr/local/bin/vnodediag"}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Errorf("image files %v, want only %v", files, want)
	}
}

func walk(root, rel string, files *[]string) error {
	entries, err := os.ReadDir(root + rel)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := rel + "/" + e.Name()
		if e.IsDir() {
			if err := walk(root, p, files); err != nil {
				return err
			}
			continue
		}
		*files = append(*files, p)
	}
	return nil
}
