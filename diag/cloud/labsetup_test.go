package cloud

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// credentialEnv are the variables the default credential chain reads; the
// tests set all of them so that neither the developer's own credentials
// nor the metadata service (an address outside the machine) are touched.
var credentialEnv = []string{
	"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
	"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
	"ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
}

// isolateCredentials empties the chain's environment, points HOME at an
// empty directory and turns off the metadata service step.
func isolateCredentials(t *testing.T) string {
	t.Helper()
	for _, k := range credentialEnv {
		t.Setenv(k, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	return home
}

// useKey makes the chain's first step (environment) yield k.
func useKey(t *testing.T, k cloudlab.AccessKey) {
	t.Helper()
	isolateCredentials(t)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", k.ID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", k.Secret)
	t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", k.Token)
}

// lab is a lab server with an account and a provider pointed at it.
type lab struct {
	srv   *cloudlab.Server
	cfg   Config
	nodes []*corev1.Node
	logs  *diagtest.SyncBuffer
}

func startLab(t *testing.T, data *cloudlab.DataSet, region string) *lab {
	t.Helper()
	srv, err := cloudlab.Start(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	useKey(t, srv.Key())
	return &lab{srv: srv, logs: &diagtest.SyncBuffer{}, cfg: Config{
		RegionID: region,
		Endpoints: Endpoints{
			ECS: srv.Endpoint("ecs"), VPC: srv.Endpoint("vpc"), PVTZ: srv.Endpoint("pvtz"),
		},
		QPS: -1,
	}}
}

func startDemoLab(t *testing.T) *lab {
	t.Helper()
	d, spec := cloudlab.Demo()
	l := startLab(t, d, spec.Region)
	l.cfg.OnPremCIDRs = spec.OnPremCIDRs
	l.nodes = hybridNodes()
	return l
}

// hybridNodes are the nodes of kubelab.HybridCluster, as the API server
// would return them.
func hybridNodes() []*corev1.Node {
	var out []*corev1.Node
	for _, o := range kubelab.HybridCluster() {
		if n, ok := o.(*corev1.Node); ok {
			out = append(out, n)
		}
	}
	return out
}

func (l *lab) provider(t *testing.T) *provider {
	t.Helper()
	log := slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := l.cfg
	p, err := NewProvider(&cfg, diag.Env{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*provider)
}

// gather runs one gather under a deadline, like the runner's source
// timeout, with the lab's nodes as the run's Kubernetes snapshot.
func (l *lab) gather(t *testing.T, timeout time.Duration) (*Snapshot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return gatherFor(ctx, l.provider(t), &kube.Snapshot{Nodes: l.nodes})
}

// gatherFor gathers p as the runner does, after the kube source gave ks.
func gatherFor(ctx context.Context, p diag.Provider, ks *kube.Snapshot) (*Snapshot, error) {
	v, err := p.(diag.Dependent).GatherFrom(ctx, diag.NewInputs(kube.Source.With(ks)))
	if err != nil {
		return nil, err
	}
	return v.(*Snapshot), nil
}

func (l *lab) mustGather(t *testing.T) *Snapshot {
	t.Helper()
	s, err := l.gather(t, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testEnv is the provider environment of the tests: CLOUD_TEST_LOG=1
// shows the source's debug log.
func testEnv() diag.Env { return diag.Env{Log: testLogger()} }

func testLogger() *slog.Logger {
	if os.Getenv("CLOUD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
