package bgp_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/bgp"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func writePasswordFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bgp-password")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPasswordFile: passwordFile is read at validation, trimmed, and used
// as the peer's password; every error names the file and the field, never
// the content.
func TestPasswordFile(t *testing.T) {
	const secret = "Kx7-file-secret"
	t.Run("read and trimmed", func(t *testing.T) {
		c := validConfig()
		c.Peers[0].PasswordFile = writePasswordFile(t, "  "+secret+"\r\n\n")
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := bgp.PeerPassword(&c, 0); got != secret {
			t.Errorf("password from file = %q, want %q", got, secret)
		}
	})
	dir := t.TempDir()
	long := writePasswordFile(t, strings.Repeat("s", 81))
	empty := writePasswordFile(t, " \n\t\n")
	huge := writePasswordFile(t, strings.Repeat(secret, 1000))
	missing := filepath.Join(dir, "nothing-here")
	cases := []struct {
		name string
		mod  func(*bgp.PeerConfig)
		want string
	}{
		{"both", func(p *bgp.PeerConfig) { p.Password, p.PasswordFile = secret, long },
			"peers[0]: password and passwordFile are mutually exclusive: give one"},
		{"missing", func(p *bgp.PeerConfig) { p.PasswordFile = missing },
			"peers[0].passwordFile: open " + missing + ": no such file or directory"},
		{"directory", func(p *bgp.PeerConfig) { p.PasswordFile = dir },
			"peers[0].passwordFile: read " + dir + ": is a directory"},
		{"empty", func(p *bgp.PeerConfig) { p.PasswordFile = empty }, "peers[0].passwordFile: " + empty + ": empty"},
		{"too long", func(p *bgp.PeerConfig) { p.PasswordFile = long }, "peers[0].passwordFile: longer than 80 bytes (81)"},
		{"not a password", func(p *bgp.PeerConfig) { p.PasswordFile = huge },
			"peers[0].passwordFile: " + huge + ": larger than 4096 bytes, not a password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c.Peers[0])
			err := c.Validate()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "sss") {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

// TestPasswordFromFileNotInOutput: a password read from a file reaches no
// log line (ours and gobgp's, at debug), no error and no report of a real
// session attempt.
func TestPasswordFromFileNotInOutput(t *testing.T) {
	const secret = "Wq4-from-a-file"
	ln, err := net.Listen("tcp", "127.0.0.42:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	tb, logs := failedAttempt(t, bgp.PeerConfig{Address: "127.0.0.42", Port: port, ASN: routerASN, PasswordFile: writePasswordFile(t, secret+"\n")})
	report, err := protojson.Marshal(&pb.Report{Results: bgp.EvaluateSessions(tb)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "bgp observer started") {
		t.Fatalf("no observer log: %s", logs.String())
	}
	for what, text := range map[string]string{"logs": logs.String(), "report": string(report), "last error": tb.Peers[0].LastError} {
		if strings.Contains(text, secret) {
			t.Errorf("the password from the file is in the %s", what)
		}
	}
}
