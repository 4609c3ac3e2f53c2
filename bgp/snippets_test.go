package bgp

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSnippetsParse hands the BIRD and FRR snippets to the real daemons'
// configuration parsers (bird -p, bgpd --dryrun): a fix the user pastes
// must be accepted as it is. The values are the configured ones, not
// defaults.
func TestSnippetsParse(t *testing.T) {
	tb := &Table{LocalASN: 65010, LocalAddress: "10.0.0.9", ListenPort: 1179,
		Peers: []PeerStatus{{Name: "r1", Address: netip.MustParseAddr("10.0.0.1"), ASN: 65001}}}
	intro, session := routerSnippets(tb, &tb.Peers[0])
	if !strings.Contains(intro, "10.0.0.9 (AS 65010") {
		t.Errorf("intro = %q", intro)
	}
	pods := advertiseSnippets(tb, "onprem-pods", []staticRoute{
		{netip.MustParsePrefix("172.21.0.0/24"), "10.0.0.5"}, {netip.MustParsePrefix("172.21.1.0/24"), "10.0.0.6"}})
	cloud := staticToVBRSnippets(netip.MustParsePrefix("100.64.0.0/10"))
	for _, want := range []struct {
		text, sub string
	}{
		{session[0].Text, "neighbor 10.0.0.9 port 1179 as 65010;"},
		{session[1].Text, "neighbor 10.0.0.9 port 1179"},
		{session[3].Text, "peer-as 65010"},
		{pods[1].Text, "router bgp 65001"},
		{pods[2].Text, "ip route 172.21.0.0 255.255.255.0 10.0.0.5"},
		{cloud[2].Text, "ip route 100.64.0.0 255.192.0.0 <VBR-address>"},
	} {
		if !strings.Contains(want.text, want.sub) {
			t.Errorf("snippet lacks %q:\n%s", want.sub, want.text)
		}
	}

	if bird, err := exec.LookPath("bird"); err != nil {
		t.Log("bird not installed: BIRD syntax not checked")
	} else {
		for _, s := range []string{session[0].Text, pods[0].Text} {
			conf := filepath.Join(t.TempDir(), "bird.conf")
			if err := os.WriteFile(conf, []byte("router id 10.0.0.1;\n"+s+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bird, "-p", "-c", conf).CombinedOutput(); err != nil {
				t.Errorf("bird -p rejects the snippet: %v\n%s\n%s", err, out, s)
			}
		}
	}
	const bgpd = "/usr/lib/frr/bgpd"
	if _, err := os.Stat(bgpd); err != nil {
		t.Log("FRR not installed: FRR syntax not checked")
		return
	}
	for _, s := range []string{session[1].Text, pods[1].Text, cloud[1].Text} {
		conf := filepath.Join(t.TempDir(), "bgpd.conf")
		if err := os.WriteFile(conf, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bgpd, "--dryrun", "-f", conf, "--vty_socket", t.TempDir(), "-n", "-Z").CombinedOutput()
		if err != nil || strings.Contains(string(out), "config line") || strings.Contains(string(out), "rror") {
			t.Errorf("bgpd --dryrun rejects the snippet: %v\n%s\n%s", err, out, s)
		}
	}
}
