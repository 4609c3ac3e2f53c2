package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDisplayName(t *testing.T) {
	for argv0, want := range map[string]string{
		"vnodediag": "vnodediag", "/usr/local/bin/vnodediag": "vnodediag", "./bin/vnodediag": "vnodediag",
		"/home/u/.krew/bin/kubectl-vnodediag": "kubectl vnodediag", `C:\krew\bin\kubectl-vnodediag.exe`: "kubectl vnodediag",
		"kubectl-vnodediag": "kubectl vnodediag", "kubectl-other": "vnodediag",
	} {
		if got := displayName(strings.ReplaceAll(argv0, `\`, "/")); got != want {
			t.Errorf("displayName(%q) = %q, want %q", argv0, got, want)
		}
	}
}

// TestKubectlPlugin installs the binary as kubectl-vnodediag on PATH and
// runs it through the real kubectl: `kubectl plugin list` finds it,
// `kubectl vnodediag version` runs it, and its help names the command as
// it was invoked.
func TestKubectlPlugin(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not on PATH: the plugin test needs the real kubectl")
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, kubectlPlugin)
	if err := os.Link(binPath, plugin); err != nil {
		b, err := os.ReadFile(binPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(plugin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir(), "KUBECONFIG=")
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("plugin", "list", "--name-only"); !strings.Contains(out, kubectlPlugin) {
		t.Errorf("kubectl plugin list does not find %s:\n%s", kubectlPlugin, out)
	}
	if out := run("vnodediag", "version"); !strings.HasPrefix(out, "vnodediag ") {
		t.Errorf("kubectl vnodediag version = %q", out)
	}
	help := run("vnodediag", "--help")
	for _, want := range []string{"kubectl vnodediag [command]", "kubectl vnodediag [command] --help"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if sub := run("vnodediag", "diagnose", "--help"); !strings.Contains(sub, "kubectl vnodediag diagnose [flags]") {
		t.Errorf("diagnose help does not say kubectl vnodediag:\n%s", sub)
	}
	// Run directly, the binary keeps its own name.
	if out, _, _ := runBin(t, nil, "--help"); strings.Contains(out, "kubectl vnodediag") {
		t.Errorf("vnodediag --help names the plugin:\n%s", out)
	}
}
