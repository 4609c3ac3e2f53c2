package proto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the Go code into a temporary
// directory with the pinned generators and compares it with the committed
// files, so a .proto change without `make proto` fails the tests.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatal("protoc not found: install Debian's protobuf-compiler and libprotobuf-dev (.ci/run does)")
	}
	// Read the source here too, so that go test's cache notices a change.
	for _, f := range []string{"vnodediag.proto", "probe.proto"} {
		if _, err := os.ReadFile(filepath.Join("vnodediag", "v1", f)); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "proto", "PROTO_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make proto: %v\n%s", err, b)
	}
	for _, f := range []string{"vnodediag.pb.go", "vnodediag_grpc.pb.go", "probe.pb.go", "probe_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, "vnodediag", "v1", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("vnodediag", "v1", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("proto/vnodediag/v1/%s is stale: run `make proto` and commit the result", f)
		}
	}
}
