package cloudnet_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vnodediag/vnodediag/diag/cloudnet"
)

func set(ps ...string) *cloudnet.PrefixSet {
	s := cloudnet.NewPrefixSet()
	for i, p := range ps {
		s.Insert(netip.MustParsePrefix(p), int32(i))
	}
	return s
}

func TestPrefixSetUncovered(t *testing.T) {
	cases := []struct {
		routes []string
		ask    string
		want   string
	}{
		{nil, "100.64.0.0/10", "[100.64.0.0/10]"},
		{[]string{"100.64.0.0/10"}, "100.64.0.0/10", "[]"},
		{[]string{"100.0.0.0/8"}, "100.64.0.0/10", "[]"},
		{[]string{"0.0.0.0/0"}, "100.64.0.0/10", "[]"},
		{[]string{"100.100.0.0/16"}, "100.64.0.0/10", "[100.64.0.0/11 100.96.0.0/14 100.101.0.0/16 100.102.0.0/15 100.104.0.0/13 100.112.0.0/12]"},
		{[]string{"100.64.0.0/11", "100.96.0.0/11"}, "100.64.0.0/10", "[]"},
		{[]string{"100.64.0.0/11"}, "100.64.0.0/10", "[100.96.0.0/11]"},
		{[]string{"10.0.0.0/8"}, "100.64.0.0/10", "[100.64.0.0/10]"},
		{[]string{"172.23.0.0/27"}, "172.23.0.0/26", "[172.23.0.32/27]"},
		{[]string{"fd00::/8"}, "fd00:23::/64", "[]"},
		{[]string{"fd00:23::/65"}, "fd00:23::/64", "[fd00:23:0:0:8000::/65]"},
		{[]string{"172.23.0.0/16"}, "fd00:23::/64", "[fd00:23::/64]"},
		{[]string{"::/0"}, "172.23.0.0/26", "[172.23.0.0/26]"},
		{[]string{"172.23.0.0/26"}, "172.23.0.5/26", "[]"},
	}
	for _, tc := range cases {
		got, _ := set(tc.routes...).Uncovered(netip.MustParsePrefix(tc.ask), 0)
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("routes %v, uncovered(%s) = %s, want %s", tc.routes, tc.ask, s, tc.want)
		}
	}
}

func TestPrefixSetUncoveredLimit(t *testing.T) {
	s := set("100.64.0.0/12", "100.96.0.0/12", "100.112.0.0/13")
	got, cut := s.Uncovered(netip.MustParsePrefix("100.64.0.0/10"), 1)
	if fmt.Sprint(got) != "[100.80.0.0/12]" || !cut {
		t.Fatalf("got %v cut %v", got, cut)
	}
}

func TestPrefixSetLongestAndWithin(t *testing.T) {
	s := set("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16")
	cases := []struct{ ask, want string }{
		{"10.1.2.128/25", "10.1.2.0/24"},
		{"10.1.3.0/24", "10.1.0.0/16"},
		{"10.2.0.0/16", "10.0.0.0/8"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"0.0.0.0/0", "none"},
		{"172.16.0.0/12", "none"},
	}
	for _, tc := range cases {
		got := "none"
		if _, m, ok := s.Longest(netip.MustParsePrefix(tc.ask)); ok {
			got = m.String()
		}
		if got != tc.want {
			t.Errorf("Longest(%s) = %s, want %s", tc.ask, got, tc.want)
		}
	}
	if w := s.Within(netip.MustParsePrefix("10.0.0.0/8"), 0); fmt.Sprint(w) != "[1 2]" {
		t.Errorf("Within(10/8) = %v", w)
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d", s.Len())
	}
}
