package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// kubectlPlugin is the file name under which kubectl finds vnodediag as a
// plugin: `kubectl vnodediag ...` runs `kubectl-vnodediag ...`.
const kubectlPlugin = "kubectl-vnodediag"

// displayName is the command name help and usage show: `kubectl vnodediag`
// when the binary runs as the kubectl plugin, else `vnodediag`.
func displayName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if base == kubectlPlugin {
		return "kubectl vnodediag"
	}
	return "vnodediag"
}

// setDisplayName names the root command as it was invoked.
func setDisplayName(root *cobra.Command) {
	if len(os.Args) == 0 {
		return
	}
	if name := displayName(os.Args[0]); name != root.Name() {
		if root.Annotations == nil {
			root.Annotations = map[string]string{}
		}
		root.Annotations[cobra.CommandDisplayNameAnnotation] = name
	}
}
