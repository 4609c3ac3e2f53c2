package cloud

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/cloudlab"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func resolve(t *testing.T, profile string) (*resolved, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return newCredentialChain(profile).resolve(ctx)
}

// TestCredentialChainOrder walks the documented order: environment first,
// then the CLI profile (current, or ALIBABA_CLOUD_PROFILE, or the
// configured one), then the credentials file; the kind is reported, the
// key never.
func TestCredentialChainOrder(t *testing.T) {
	home := isolateCredentials(t)
	writeFile(t, filepath.Join(home, ".aliyun", "config.json"), `{"current": "dev", "profiles": [
		{"name": "dev", "mode": "AK", "access_key_id": "LTAI5tDevKeyId00", "access_key_secret": "dev-secret-value"},
		{"name": "ops", "mode": "StsToken", "access_key_id": "STS.OpsKeyId0000", "access_key_secret": "ops-secret-value", "sts_token": "ops-token-value"}]}`)
	writeFile(t, filepath.Join(home, ".alibabacloud", "credentials"), "[default]\ntype = access_key\naccess_key_id = LTAI5tFileKeyId0\naccess_key_secret = file-secret-value\n")

	r, err := resolve(t, "")
	if err != nil || r.id != "LTAI5tDevKeyId00" || r.kind != `CLI profile "dev" in ~/.aliyun/config.json (AccessKey)` {
		t.Fatalf("current profile: %+v %v", r, err)
	}
	t.Setenv("ALIBABA_CLOUD_PROFILE", "ops")
	r, err = resolve(t, "")
	if err != nil || r.token != "ops-token-value" || r.kind != `CLI profile "ops" in ~/.aliyun/config.json (STS token)` {
		t.Fatalf("ALIBABA_CLOUD_PROFILE: %+v %v", r, err)
	}
	t.Setenv("ALIBABA_CLOUD_PROFILE", "")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tEnvKeyId00")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret-value")
	r, err = resolve(t, "")
	if err != nil || r.id != "LTAI5tEnvKeyId00" || !strings.HasPrefix(r.kind, "environment variables") {
		t.Fatalf("environment first: %+v %v", r, err)
	}
	// A configured profile is used even when the environment has a key.
	r, err = resolve(t, "ops")
	if err != nil || r.id != "STS.OpsKeyId0000" {
		t.Fatalf("configured profile: %+v %v", r, err)
	}
	// Without the CLI file, the credentials file.
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	os.Remove(filepath.Join(home, ".aliyun", "config.json"))
	r, err = resolve(t, "")
	if err != nil || r.id != "LTAI5tFileKeyId0" || !strings.Contains(r.kind, `profile "default" in `) {
		t.Fatalf("credentials file: %+v %v", r, err)
	}
}

// TestNoCredentials: every step says why it did not apply; the metadata
// step is off in tests (it would leave the machine).
func TestNoCredentials(t *testing.T) {
	isolateCredentials(t)
	_, err := resolve(t, "")
	if err == nil || !containsAll(err.Error(), "environment: ALIBABA_CLOUD_ACCESS_KEY_ID is not set", "RRSA/OIDC: ALIBABA_CLOUD_ROLE_ARN",
		"CLI profile (~/.aliyun/config.json): no such file", "credentials file", "ECS instance RAM role (metadata service): disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
		t.Fatalf("got %v", err)
	}
	_, err = resolve(t, "prod")
	if err == nil || strings.Contains(err.Error(), "environment:") || !strings.Contains(err.Error(), "CLI profile") {
		t.Fatalf("configured profile: %v", err)
	}
}

// TestCredentialErrorsKeepSecrets attacks the chain with malformed files
// that hold keys: the SDK's own messages quote them; ours must not.
func TestCredentialErrorsKeepSecrets(t *testing.T) {
	home := isolateCredentials(t)
	const secret = "S3cr3tV4lue-in-a-broken-file"
	writeFile(t, filepath.Join(home, ".aliyun", "config.json"), `{"current": "dev", "profiles": [{"name": "dev", "mode": "AK", "access_key_secret": "`+secret+`"`)
	writeFile(t, filepath.Join(home, ".alibabacloud", "credentials"), "[default]\ntype = access_key\naccess_key_secret "+secret+"\n")
	_, err := resolve(t, "")
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("got %v", err)
	}
	writeFile(t, filepath.Join(home, ".aliyun", "config.json"), `{"current": "dev", "profiles": [{"name": "dev", "mode": "Bogus", "access_key_secret": "`+secret+`"}]}`)
	_, err = resolve(t, "")
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `profile "dev"`) {
		t.Fatalf("got %v", err)
	}
	_, err = resolve(t, "nosuch")
	if err == nil || !strings.Contains(err.Error(), `no profile "nosuch"`) {
		t.Fatalf("got %v", err)
	}
}

// TestSecretsNeverLeave attacks the source with an STS credential whose
// secret is wrong: the gateway answers SignatureDoesNotMatch and echoes its
// string to sign, which holds the AccessKeyId and the security token.
// Neither they nor the secret may reach the snapshot, the results, the
// source status or the logs.
func TestSecretsNeverLeave(t *testing.T) {
	d, spec := cloudlab.Demo()
	l := startLab(t, d, spec.Region)
	l.nodes = hybridNodes()
	sts := cloudlab.AccessKey{ID: "STS.NUgYrLnoC3ar7ZiyLc6ucZ6uX", Secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCY", Token: "CAIS+gF1q6Ft5B2yfSjIr5/tPOD2/aoUzrg="}
	l.srv.AddKey(sts)
	useKey(t, cloudlab.AccessKey{ID: sts.ID, Secret: "a-wrong-secret-value", Token: sts.Token})
	s := l.mustGather(t)
	if len(s.Errors) == 0 || !strings.Contains(s.Errors[PartVPC].Error(), "was rejected") {
		t.Fatalf("errors %v", s.Errors)
	}
	echoed := false
	for _, c := range l.srv.Calls() {
		echoed = echoed || c.Code == "SignatureDoesNotMatch"
	}
	if !echoed {
		t.Fatal("the lab did not answer SignatureDoesNotMatch")
	}
	var out strings.Builder
	out.WriteString(s.Describe())
	for _, e := range s.InstanceErrs {
		out.WriteString(e.Error())
	}
	for _, e := range s.Errors {
		out.WriteString(e.Error())
	}
	in := diag.NewInputs(Source.With(s), kube.Source.With(&kube.Snapshot{Nodes: l.nodes}))
	for _, c := range Checks() {
		for _, r := range c.Run(context.Background(), in) {
			b, _ := protojson.Marshal(r)
			out.Write(b)
		}
	}
	out.WriteString(l.logs.String())
	for _, secret := range []string{sts.ID, sts.Token, "a-wrong-secret-value", "NUgYrLnoC3ar7ZiyLc6ucZ6uX", "CAIS%2BgF1q6Ft5B2yfSjIr5%2FtPOD2%2FaoUzrg%3D", "CAIS%252BgF1q6Ft5B2yfSjIr5"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("output holds %q:\n%s", secret, out.String())
		}
	}
	if !strings.Contains(out.String(), "SignatureDoesNotMatch") {
		t.Errorf("the error code is lost:\n%s", out.String())
	}
}
