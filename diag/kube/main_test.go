package kube_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any goroutine outlives its tests: runs
// against real and hung API servers must end everything they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
