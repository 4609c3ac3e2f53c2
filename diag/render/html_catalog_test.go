package render_test

import (
	"testing"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag/render"
)

// Every check of the catalog is drawn on some hop of the HTML report's
// path: a new check (or family) must be given its place in hopRules.
func TestHTMLHopsCoverCatalog(t *testing.T) {
	checks := app.Checks()
	if len(checks) == 0 {
		t.Fatal("empty catalog")
	}
	for _, c := range checks {
		if len(render.HopsOf(c.ID)) == 0 {
			t.Errorf("check %s is on no hop of the HTML report: add it to hopRules in html.go", c.ID)
		}
	}
}
