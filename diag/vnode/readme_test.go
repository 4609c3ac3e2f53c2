package vnode

import (
	"testing"

	"github.com/vnodediag/vnodediag/diag/diagtest"
)

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }
