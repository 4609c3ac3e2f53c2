// Package kubelab starts a real kube-apiserver and etcd (controller-runtime
// envtest, binaries from hack/envtest-assets.sh; StartLegacy runs the
// v1.15.12 server of hack/legacy-apiserver.sh) and loads objects into it,
// including their status through the status subresource. Tests, `make demo`
// and the benchmarks share it.
package kubelab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Lab is a running API server.
type Lab struct {
	env        *envtest.Environment
	Config     *rest.Config
	Client     kubernetes.Interface
	Kubeconfig string // path of an admin kubeconfig file
	// AuditLog is the API server's audit log (JSON lines, level Metadata),
	// set by StartAudited.
	AuditLog   string
	dir        string
	auditDir   string
	certDir    string
	namespaces sync.Map // namespaces already created by Apply
}

// AssetsDir finds the kube-apiserver/etcd directory: KUBEBUILDER_ASSETS, or
// the cache that hack/envtest-assets.sh fills (building it if needed).
func AssetsDir() (string, error) {
	return assetsDir("KUBEBUILDER_ASSETS", "envtest-assets.sh")
}

// LegacyVersion is the release of the legacy lab server: the last one
// before label-based VNode scheduling (1.16).
const LegacyVersion = "v1.15.12"

// LegacyAssetsDir finds the directory with kube-apiserver v1.15.12 (and
// etcd): VNODEDIAG_LEGACY_ASSETS, or the cache that
// hack/legacy-apiserver.sh fills (building it if needed).
func LegacyAssetsDir() (string, error) {
	return assetsDir("VNODEDIAG_LEGACY_ASSETS", "legacy-apiserver.sh")
}

func assetsDir(env, script string) (string, error) {
	if d := os.Getenv(env); d != "" {
		return d, nil
	}
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "hack", script)
	out, err := exec.Command("bash", path).Output()
	if err != nil {
		return "", fmt.Errorf("build envtest assets with %s: %w", path, err)
	}
	return string(trimNL(out)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Start starts an API server. Stop it with Stop.
func Start() (*Lab, error) { return StartWith(nil) }

// StartWith starts an API server with extra kube-apiserver flags (name
// without dashes, value), e.g. the kubelet client flags a lab VNode needs
// (test/vnodelab). Stop it with Stop.
func StartWith(flags map[string]string) (*Lab, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if len(flags) > 0 {
		env.ControlPlane.APIServer = &envtest.APIServer{}
		for k, v := range flags {
			env.ControlPlane.APIServer.Configure().Set(k, v)
		}
	}
	return start(env)
}

// StartLegacy starts a real kube-apiserver v1.15.12, a cluster too old for
// label-based VNode scheduling. Stop it with Stop.
func StartLegacy() (*Lab, error) {
	assets, err := LegacyAssetsDir()
	if err != nil {
		return nil, err
	}
	// Explicit paths: envtest prefers KUBEBUILDER_ASSETS (the modern
	// server, when set) to BinaryAssetsDirectory.
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	env.ControlPlane.APIServer = &envtest.APIServer{Path: filepath.Join(assets, "kube-apiserver")}
	// Before 1.20 the server also serves plain HTTP on localhost:8080 unless
	// told not to; two labs would collide there.
	env.ControlPlane.APIServer.Configure().Set("insecure-port", "0")
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, "etcd")}
	return start(env)
}

// auditPolicy records every request with its verb, resource, user and
// authorization decision, but no body.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`

// StartAudited starts an API server that writes an audit log of every
// request to AuditLog: what a client really asked for, as the server
// understood it. Stop it with Stop.
func StartAudited() (*Lab, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vnodediag-kubelab-audit-")
	if err != nil {
		return nil, err
	}
	policy, log := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	env.ControlPlane.APIServer = &envtest.APIServer{}
	env.ControlPlane.APIServer.Configure().Set("audit-policy-file", policy).Set("audit-log-path", log)
	l, err := start(env)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	l.AuditLog, l.auditDir = log, dir
	return l, nil
}

// StartRestartable starts an API server that can be stopped and started
// again (StopAPIServer, StartAPIServer) on the same port, certificates and
// etcd, as a control plane restart looks to its clients. Stop it with Stop.
func StartRestartable() (*Lab, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vnodediag-kubelab-certs-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	// A certificate directory of our own survives the server's stop; the
	// stop may wait for the watches of a loaded machine to drain.
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: dir}
	env.ControlPlaneStopTimeout = 90 * time.Second
	l, err := start(env)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	l.certDir = dir
	return l, nil
}

// StartRestartableT is StartRestartable for one test, stopped at its end.
func StartRestartableT(t testing.TB) *Lab {
	t.Helper()
	return startT(t, StartRestartable)
}

// StopAPIServer stops the kube-apiserver (etcd keeps running) of a lab
// from StartRestartable.
func (l *Lab) StopAPIServer() error {
	if l.certDir == "" {
		return fmt.Errorf("kubelab: StopAPIServer needs a lab from StartRestartable")
	}
	return l.env.ControlPlane.APIServer.Stop()
}

// StartAPIServer starts the kube-apiserver stopped by StopAPIServer again,
// on the same port, certificates and etcd, and waits until it is healthy.
func (l *Lab) StartAPIServer() error {
	if l.certDir == "" {
		return fmt.Errorf("kubelab: StartAPIServer needs a lab from StartRestartable")
	}
	return l.env.ControlPlane.APIServer.Start()
}

// StartAuditedT is StartAudited for one test, stopped at its end.
func StartAuditedT(t testing.TB) *Lab {
	t.Helper()
	return startT(t, StartAudited)
}

func start(env *envtest.Environment) (*Lab, error) {
	// A lab's etcd needs no durability; without fsync loading 150,000 pods
	// is several times faster.
	if env.ControlPlane.Etcd == nil {
		env.ControlPlane.Etcd = &envtest.Etcd{}
	}
	env.ControlPlane.Etcd.Configure().Set("unsafe-no-fsync", "true")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest API server: %w", err)
	}
	l := &Lab{env: env, Config: cfg}
	// The lab loads tens of thousands of objects; client-side throttling
	// (5 QPS by default) would dominate.
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = 5000, 10000
	if l.Client, err = kubernetes.NewForConfig(fast); err != nil {
		l.Stop()
		return nil, err
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "vnodediag-lab", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		l.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		l.Stop()
		return nil, err
	}
	if l.dir, err = os.MkdirTemp("", "vnodediag-kubelab-"); err != nil {
		l.Stop()
		return nil, err
	}
	l.Kubeconfig = filepath.Join(l.dir, "kubeconfig")
	if err := os.WriteFile(l.Kubeconfig, kc, 0o600); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

// StartT starts an API server for one test and stops it at the end.
func StartT(t testing.TB) *Lab {
	t.Helper()
	return startT(t, Start)
}

// StartLegacyT starts the v1.15.12 API server for one test and stops it at
// the end.
func StartLegacyT(t testing.TB) *Lab {
	t.Helper()
	return startT(t, StartLegacy)
}

func startT(t testing.TB, start func() (*Lab, error)) *Lab {
	t.Helper()
	l, err := start()
	if err != nil {
		t.Fatalf("kubelab: %v", err)
	}
	t.Cleanup(l.Stop)
	return l
}

// UserConfig adds a user with the given groups (none: only what RBAC
// bindings grant) and returns a REST config that authenticates as it.
func (l *Lab) UserConfig(name string, groups ...string) (*rest.Config, error) {
	u, err := l.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// Stop stops the API server and removes its files.
func (l *Lab) Stop() {
	if l.env != nil {
		_ = l.env.Stop()
	}
	if l.dir != "" {
		_ = os.RemoveAll(l.dir)
	}
	if l.auditDir != "" {
		_ = os.RemoveAll(l.auditDir)
	}
	if l.certDir != "" {
		_ = os.RemoveAll(l.certDir)
	}
}

// Apply creates objects (namespaces as needed) and then writes their status
// through the status subresource, as a kubelet or controller would.
func (l *Lab) Apply(ctx context.Context, objs ...any) error {
	for _, o := range objs {
		if err := l.apply(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ensureNamespace(ctx context.Context, ns string) error {
	if _, done := l.namespaces.Load(ns); ns == "" || done {
		return nil
	}
	_, err := l.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err == nil || apierrors.IsAlreadyExists(err) {
		l.namespaces.Store(ns, true)
		return nil
	}
	return err
}

func (l *Lab) apply(ctx context.Context, o any) error {
	c := l.Client
	switch v := o.(type) {
	case *corev1.Node:
		st := v.Status
		got, err := c.CoreV1().Nodes().Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node %s: %w", v.Name, err)
		}
		got.Status = st
		got, err = c.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("node %s status: %w", v.Name, err)
		}
		// The API server's TaintNodesByCondition admission taints every
		// new node not-ready:NoSchedule; the node lifecycle controller,
		// which the lab does not run, lifts it once the node is Ready.
		if taints, lifted := withoutNotReady(got); lifted {
			got.Spec.Taints = taints
			if _, err := c.CoreV1().Nodes().Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("node %s taints: %w", v.Name, err)
			}
		}
	case *corev1.Pod:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		st := v.Status
		got, err := c.CoreV1().Pods(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", v.Namespace, v.Name, err)
		}
		got.Status = st
		if _, err := c.CoreV1().Pods(v.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s status: %w", v.Namespace, v.Name, err)
		}
	case *appsv1.DaemonSet:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		st := v.Status
		got, err := c.AppsV1().DaemonSets(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create daemonset %s/%s: %w", v.Namespace, v.Name, err)
		}
		got.Status = st
		if _, err := c.AppsV1().DaemonSets(v.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("daemonset %s/%s status: %w", v.Namespace, v.Name, err)
		}
	case *appsv1.Deployment:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		if _, err := c.AppsV1().Deployments(v.Namespace).Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment %s/%s: %w", v.Namespace, v.Name, err)
		}
	case *corev1.ConfigMap:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		if _, err := c.CoreV1().ConfigMaps(v.Namespace).Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create configmap %s/%s: %w", v.Namespace, v.Name, err)
		}
	case *corev1.Event:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		if _, err := c.CoreV1().Events(v.Namespace).Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create event %s/%s: %w", v.Namespace, v.Name, err)
		}
	case *corev1.Service:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		if _, err := c.CoreV1().Services(v.Namespace).Create(ctx, v, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service %s/%s: %w", v.Namespace, v.Name, err)
		}
	case *corev1.Namespace:
		if _, err := c.CoreV1().Namespaces().Create(ctx, v, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			// Made by an earlier object of the namespace: give it the labels.
			got, err := c.CoreV1().Namespaces().Get(ctx, v.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("namespace %s: %w", v.Name, err)
			}
			got.Labels = v.Labels
			if _, err := c.CoreV1().Namespaces().Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("label namespace %s: %w", v.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("create namespace %s: %w", v.Name, err)
		}
		l.namespaces.Store(v.Name, true)
	case *corev1.PersistentVolume:
		st := v.Status
		got, err := c.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create persistentvolume %s: %w", v.Name, err)
		}
		got.Status = st
		if _, err := c.CoreV1().PersistentVolumes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("persistentvolume %s status: %w", v.Name, err)
		}
	case *corev1.PersistentVolumeClaim:
		if err := l.ensureNamespace(ctx, v.Namespace); err != nil {
			return err
		}
		st := v.Status
		got, err := c.CoreV1().PersistentVolumeClaims(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create persistentvolumeclaim %s/%s: %w", v.Namespace, v.Name, err)
		}
		got.Status = st
		if _, err := c.CoreV1().PersistentVolumeClaims(v.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("persistentvolumeclaim %s/%s status: %w", v.Namespace, v.Name, err)
		}
	case *APIService:
		return l.applyAPIService(ctx, v)
	default:
		return fmt.Errorf("kubelab: cannot apply %T", o)
	}
	return nil
}

// withoutNotReady returns a Ready node's taints without the not-ready
// NoSchedule taint, and whether it had one.
func withoutNotReady(n *corev1.Node) ([]corev1.Taint, bool) {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	var out []corev1.Taint
	lifted := false
	for _, t := range n.Spec.Taints {
		if ready && t.Key == corev1.TaintNodeNotReady && t.Effect == corev1.TaintEffectNoSchedule {
			lifted = true
			continue
		}
		out = append(out, t)
	}
	return out, lifted
}
