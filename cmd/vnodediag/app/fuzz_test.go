package app

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: any file must give a configuration that validates or an error
// that says what is wrong, never a panic or a runaway expansion.
func FuzzParse(f *testing.F) {
	if readme, err := os.ReadFile("../../../README.md"); err == nil {
		_, after, _ := strings.Cut(string(readme), "## Configuration")
		_, block, _ := strings.Cut(after, "```yaml\n")
		block, _, _ = strings.Cut(block, "```")
		f.Add(block)
	}
	for _, s := range []string{
		"kubernetes: {}\n",
		"kubernetes:\n  kubeconfg: /x\n",
		"bgp:\n  EstablishTIMEOUT: 30s\n",
		"a: 1\n---\nb: 2\n",
		"runner:\n  checkTimeout: 0s\n  only: [k8s]\n",
		"dns:\n  onPremResolvers: [{name: a, address: 'fe80::1%lo'}]\n",
		"x: &a [1, *a]\n",
		"bgp:\n  peers:\n    - &p {address: 192.0.2.1, asn: 1}\n    - <<: *p\n      address: 192.0.2.2\n",
		aliasBomb(),
		mergeBomb(),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := parse([]byte(doc))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}
