package kube

import (
	"strings"
	"testing"
)

func TestParseProviderID(t *testing.T) {
	cases := []struct {
		in, region, instance, err string
	}{
		{"cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "cn-shanghai", "i-uf6f5lbqvn1l8dfnbzj1", ""},
		{"alicloud://cn-hangzhou.i-bp1abcdefgh12345", "cn-hangzhou", "i-bp1abcdefgh12345", ""},
		{"ap-southeast-1.i-t4n0123456789abcd", "ap-southeast-1", "i-t4n0123456789abcd", ""},
		{"", "", "", "providerID is empty"},
		{"i-uf6f5lbqvn1l8dfnbzj1", "", "", "missing region"},
		{"cn-shanghai/i-uf6f5lbqvn1l8dfnbzj1", "", "", "want <region-id>.<instance-id>"},
		{"aws:///us-east-1a/i-0abc", "", "", `scheme "aws://" is not "alicloud://"`},
		{"CN-SHANGHAI.i-uf6f5lbqvn1l8dfnbzj1", "", "", "is not a region ID"},
		{"cn-shanghai.instance-1", "", "", "is not an ECS instance ID"},
		{"cn-shanghai.i-short", "", "", "is not an ECS instance ID"},
	}
	for _, c := range cases {
		got, err := ParseProviderID(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseProviderID(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got.Region != c.region || got.Instance != c.instance {
			t.Errorf("ParseProviderID(%q) = %+v, %v", c.in, got, err)
		}
	}
}
