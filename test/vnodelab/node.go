package vnodelab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/vnodediag/vnodediag/test/netlab"
)

// PKI is the kubelet PKI of a lab cluster: the CA, the VNode's serving
// certificate and the API server's kubelet client certificate. The API
// server started with APIServerFlags verifies the VNode with it, and the
// VNode admits only the API server's client certificate.
type PKI struct {
	CA                      *CA
	ServingCert, ServingKey string
	ClientCert, ClientKey   string
}

// NewPKI makes the kubelet PKI in dir.
func NewPKI(dir string) (*PKI, error) {
	ca, err := NewCA(dir, "kubelet")
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca}
	if p.ServingCert, p.ServingKey, err = ca.Issue("vnode-serving", []net.IP{net.IPv4(127, 0, 0, 1)}, "localhost"); err != nil {
		return nil, err
	}
	if p.ClientCert, p.ClientKey, err = ca.Issue("kube-apiserver-kubelet-client", nil); err != nil {
		return nil, err
	}
	return p, nil
}

// APIServerFlags are the kube-apiserver flags of a cluster whose kubelets
// use this PKI (kubelab.StartWith). Without --kubelet-certificate-authority
// the API server does not verify a kubelet's serving certificate at all.
func (p *PKI) APIServerFlags() map[string]string {
	return map[string]string{
		"kubelet-certificate-authority":   p.CA.File,
		"kubelet-client-certificate":      p.ClientCert,
		"kubelet-client-key":              p.ClientKey,
		"kubelet-preferred-address-types": "InternalIP",
	}
}

// NodeConfig shapes a lab VNode.
type NodeConfig struct {
	// Name of the Node object.
	Name string
	// Host is the network namespace the pods run in: the "ECI instance".
	Host *netlab.Host
	// Exec maps images to local commands.
	Exec Exec
	// PKI, when set, is the cluster's kubelet PKI; without it the VNode
	// serves a self-signed certificate and admits any client (an API server
	// without kubelet flags neither verifies nor authenticates).
	PKI *PKI
	// Dir holds the pods' volumes and logs.
	Dir string
}

// Node is a running lab VNode: a virtual-kubelet node controller and pod
// controller on the API server, and the kubelet API (node/api) on
// 127.0.0.1:Port.
type Node struct {
	Name string
	Port int
	p    *provider
	srv  *http.Server
	stop context.CancelFunc
	done chan struct{}
}

// StartNode registers the VNode, waits until it is Ready and serves its
// kubelet API.
func StartNode(ctx context.Context, client kubernetes.Interface, cfg NodeConfig) (*Node, error) {
	if os.Getenv("VNODELAB_DEBUG") != "" {
		// virtual-kubelet logs nothing unless given a logger.
		ctx = vklog.WithLogger(ctx, vkslog.FromSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	tlsCfg, err := servingTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("lab VNode %s: %w", cfg.Name, err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	if err != nil {
		return nil, fmt.Errorf("lab VNode %s: %w", cfg.Name, err)
	}
	port := lis.Addr().(*net.TCPAddr).Port

	podInformers := informers.NewSharedInformerFactoryWithOptions(client, time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.Name).String()
		}))
	scmInformers := informers.NewSharedInformerFactory(client, time.Minute)
	podInformer := podInformers.Core().V1().Pods()
	cmInformer := scmInformers.Core().V1().ConfigMaps()
	p := newProvider(cfg.Host, cfg.Exec, cfg.Dir, cmInformer.Lister())

	spec := vnodeSpec(cfg.Name, port)
	np := node.NewNaiveNodeProvider()
	nc, err := node.NewNodeController(np, spec, client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(client.CoordinationV1().Leases(corev1.NamespaceNodeLease), 0))
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("lab VNode %s: node controller: %w", cfg.Name, err)
	}
	eb := record.NewBroadcaster()
	pc, err := node.NewPodController(node.PodControllerConfig{
		PodClient:         client.CoreV1(),
		PodInformer:       podInformer,
		EventRecorder:     eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: cfg.Name + "/pod-controller"}),
		Provider:          p,
		ConfigMapInformer: cmInformer,
		SecretInformer:    scmInformers.Core().V1().Secrets(),
		ServiceInformer:   scmInformers.Core().V1().Services(),
		// The provider resolves the downward API itself (status.podIP).
		SkipDownwardAPIResolution: true,
	})
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("lab VNode %s: pod controller: %w", cfg.Name, err)
	}

	mux := http.NewServeMux()
	mux.Handle("/", api.PodHandler(api.PodHandlerConfig{
		GetContainerLogs: p.GetContainerLogs,
		GetPods:          p.GetPods,
		GetPodsFromKubernetes: func(context.Context) ([]*corev1.Pod, error) {
			return podInformer.Lister().List(labels.Everything())
		},
	}, false))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rctx = vklog.WithLogger(rctx, vklog.G(ctx))
	n := &Node{Name: cfg.Name, Port: port, p: p, srv: srv, stop: cancel, done: make(chan struct{})}
	eb.StartRecordingToSink(&corev1client.EventSinkImpl{Interface: client.CoreV1().Events(corev1.NamespaceAll)})
	podInformers.Start(rctx.Done())
	scmInformers.Start(rctx.Done())
	go func() {
		defer close(n.done)
		defer eb.Shutdown()
		pcDone := make(chan struct{})
		go func() { _ = pc.Run(rctx, 2); close(pcDone) }()
		ncDone := make(chan struct{})
		go func() { _ = nc.Run(rctx); close(ncDone) }()
		<-pcDone
		<-ncDone
	}()
	for _, c := range []struct {
		what  string
		ready <-chan struct{}
	}{{"pod controller", pc.Ready()}, {"node controller", nc.Ready()}} {
		select {
		case <-c.ready:
		case <-ctx.Done():
			n.Close()
			return nil, fmt.Errorf("lab VNode %s: %s not ready: %w", cfg.Name, c.what, ctx.Err())
		}
	}
	setReady(spec)
	if err := np.UpdateStatus(ctx, spec); err != nil {
		n.Close()
		return nil, fmt.Errorf("lab VNode %s: mark Ready: %w", cfg.Name, err)
	}
	return n, nil
}

// servingTLS is the kubelet API's TLS: the PKI's serving certificate and
// client verification, or a self-signed certificate.
func servingTLS(cfg NodeConfig) (*tls.Config, error) {
	pki := cfg.PKI
	if pki == nil {
		ca, err := NewCA(cfg.Dir, "vnode-self")
		if err != nil {
			return nil, err
		}
		pki = &PKI{CA: ca}
		if pki.ServingCert, pki.ServingKey, err = ca.Issue("vnode-serving", []net.IP{net.IPv4(127, 0, 0, 1)}, "localhost"); err != nil {
			return nil, err
		}
	}
	kp, err := tls.LoadX509KeyPair(pki.ServingCert, pki.ServingKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	if cfg.PKI != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(cfg.PKI.CA.PEM)
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// vnodeSpec is the Node a virtual kubelet of ECI registers: the VNode
// label and taint, and the kubelet endpoint the API server calls for logs.
func vnodeSpec(name string, port int) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2000"), corev1.ResourceMemory: resource.MustParse("8Ti"), corev1.ResourcePods: resource.MustParse("2000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
		}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodePending,
			Capacity:    capacity,
			Allocatable: capacity,
			// No Hostname address: the API server's default
			// --kubelet-preferred-address-types tries Hostname first and
			// would resolve the node's name through the machine's DNS.
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
			NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.37.2-vk-lab", OperatingSystem: "linux", Architecture: "amd64"},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady}, {Type: corev1.NodeMemoryPressure}, {Type: corev1.NodeDiskPressure},
				{Type: corev1.NodePIDPressure}, {Type: corev1.NodeNetworkUnavailable},
			},
		},
	}
}

func setReady(n *corev1.Node) {
	n.Status.Phase = corev1.NodeRunning
	now := metav1.Now()
	for i, c := range n.Status.Conditions {
		st := corev1.ConditionFalse
		reason := "KubeletHasSufficientResources"
		if c.Type == corev1.NodeReady {
			st, reason = corev1.ConditionTrue, "KubeletReady"
		}
		n.Status.Conditions[i] = corev1.NodeCondition{Type: c.Type, Status: st, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
}

// Pause stops or continues a pod's process (SIGSTOP / SIGCONT).
func (n *Node) Pause(namespace, pod string, stop bool) error { return n.p.Pause(namespace, pod, stop) }

// LogRequests are the options of every container log request the VNode
// served (tailLines, limitBytes ...).
func (n *Node) LogRequests() []api.ContainerLogOpts {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	return append([]api.ContainerLogOpts(nil), n.p.logReqs...)
}

// LogFile is the container log file of a pod on this node.
func (n *Node) LogFile(namespace, pod string) (string, error) {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	st, ok := n.p.pods[key(namespace, pod)]
	if !ok {
		return "", errors.New("no pod " + key(namespace, pod) + " on " + n.Name)
	}
	return st.logFile, nil
}

// Close stops the controllers, the kubelet API and every pod's process.
func (n *Node) Close() {
	n.stop()
	<-n.done
	_ = n.srv.Close()
	n.p.Close()
}

// ensureDir is a directory for the node's pods.
func ensureDir(parent, name string) (string, error) {
	d := filepath.Join(parent, name)
	return d, os.MkdirAll(d, 0o755)
}
