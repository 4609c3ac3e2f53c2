package app

import (
	"strings"
	"testing"

	"github.com/vnodediag/vnodediag/diag/config"
)

// TestExampleLoads: `vnodediag config example` is a file the real loader
// accepts, and it sets every section of every registered family and the
// runner's.
func TestExampleLoads(t *testing.T) {
	ex := Example()
	cfg, err := config.Parse([]byte(ex), Sections())
	if err != nil {
		t.Fatalf("the example does not load: %v\n%s", err, ex)
	}
	for _, s := range Sections() {
		if !strings.HasPrefix(s.Example, s.Key+":") {
			t.Errorf("section %s: its example does not start with %q", s.Key, s.Key+":")
		}
		if cfg.Section(s.Key) == nil {
			t.Errorf("section %s is missing from the example", s.Key)
		}
	}
	if cfg.Runner.CheckTimeout.D() == 0 {
		t.Error("the runner section is missing from the example")
	}
}
