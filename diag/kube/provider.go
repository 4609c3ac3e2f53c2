package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"

	"github.com/vnodediag/vnodediag/diag"
)

// Source is the Kubernetes source's key: checks read the run's snapshot
// with kube.Source.Get(in).
var Source = diag.NewKey[*Snapshot]("kube")

// Family is the Kubernetes source and its `kubernetes` section.
func Family() diag.Family {
	return diag.Family{Name: string(Source.Name()), Section: diag.SectionOf("kubernetes", NewProvider).WithExample(Example)}
}

// Config is the `kubernetes` section of the configuration.
type Config struct {
	// Kubeconfig path; empty follows KUBECONFIG, ~/.kube/config, then in-cluster.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context in the kubeconfig; empty is the current context.
	Context string `json:"context,omitempty"`
	// Cluster and User override the context's cluster and user, as
	// kubectl's --cluster and --user do.
	Cluster string `json:"cluster,omitempty"`
	User    string `json:"user,omitempty"`
	// Namespace scopes the namespaced lists (pods, DaemonSets, Deployments,
	// pod events) to one namespace; empty reads all. Cluster-scoped objects
	// (nodes, PersistentVolumes, namespaces) and the fixed objects in
	// kube-system (CoreDNS, kube-proxy, eci-profile) are read as always.
	Namespace string `json:"namespace,omitempty"`
	// As and AsGroups impersonate a user (and groups), as kubectl's --as
	// and --as-group do: to see what a less privileged identity sees.
	As       string   `json:"as,omitempty"`
	AsGroups []string `json:"asGroups,omitempty"`
	// ServiceCIDRs adds Service CIDRs to those read from ServiceCIDR objects
	// (older clusters have none).
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	// PageSize of list calls (default 500).
	PageSize int64 `json:"pageSize,omitempty"`
	// RequestTimeout bounds every API request (default 30s).
	RequestTimeout diag.Duration `json:"requestTimeout,omitempty"`

	norm *settings
}

// settings is a validated Config with its defaults.
type settings struct {
	kubeconfig     string
	context        string
	cluster, user  string
	namespace      string
	as             string
	asGroups       []string
	serviceCIDRs   []string
	pageSize       int64
	requestTimeout time.Duration
}

// Validate checks the section without touching the network and keeps the
// settings the provider uses.
func (c *Config) Validate() error {
	var errs []error
	s := &settings{kubeconfig: c.Kubeconfig, context: c.Context, cluster: c.Cluster, user: c.User, namespace: c.Namespace,
		as: c.As, asGroups: c.AsGroups, pageSize: c.PageSize, requestTimeout: c.RequestTimeout.D()}
	if c.Namespace != "" {
		if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespace: %q is not a namespace name: %s", c.Namespace, strings.Join(msgs, "; ")))
		}
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("requestTimeout: must not be negative, got %s", c.RequestTimeout.D()))
	}
	if len(c.AsGroups) > 0 && c.As == "" {
		errs = append(errs, errors.New("asGroups: impersonating groups needs a user to impersonate (as)"))
	}
	for i, cidr := range c.ServiceCIDRs {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			errs = append(errs, fmt.Errorf("serviceCIDRs[%d]: %q is not a CIDR", i, cidr))
			continue
		}
		s.serviceCIDRs = append(s.serviceCIDRs, p.Masked().String())
	}
	if c.PageSize < 0 {
		errs = append(errs, fmt.Errorf("pageSize: must not be negative, got %d", c.PageSize))
	}
	if s.pageSize == 0 {
		s.pageSize = 500
	}
	if s.requestTimeout == 0 {
		s.requestTimeout = 30 * time.Second
	}
	if strings.HasPrefix(s.kubeconfig, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			s.kubeconfig = filepath.Join(home, s.kubeconfig[2:])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.norm = s
	return nil
}

func (c *Config) settings() (*settings, error) {
	if c.norm == nil {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("kubernetes: %w", err)
		}
	}
	return c.norm, nil
}

// Provider gathers the Kubernetes snapshot.
type Provider struct {
	set     *settings
	rest    *rest.Config
	context string
	client  kubernetes.Interface
	http    *http.Client
}

// annotations copied into the compact Pod.
var keptAnnotations = []string{"k8s.aliyun.com/insecure-registry"}

// NewProvider resolves the kubeconfig now, so that a missing or malformed
// kubeconfig is a configuration error before anything runs. A nil cfg (no
// `kubernetes` section and no kubeconfig flag) leaves the source out.
// Under `serve` (env.Daemon) the provider is a started CachedProvider.
func NewProvider(cfg *Config, env diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no kubernetes section in the configuration: add one (even empty, `kubernetes: {}`, for the standard kubeconfig rules) or pass --kubeconfig"), nil
	}
	if env.Daemon {
		c, err := NewCachedProvider(cfg, env)
		if err != nil {
			return nil, err
		}
		if err := c.Start(env.Context()); err != nil {
			return nil, err
		}
		return c, nil
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.kubeconfig != "" {
		if _, err := os.Stat(s.kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", s.kubeconfig, err)
		}
		rules.ExplicitPath = s.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: s.context}
	overrides.Context.Cluster, overrides.Context.AuthInfo = s.cluster, s.user
	overrides.AuthInfo.Impersonate, overrides.AuthInfo.ImpersonateGroups = s.as, s.asGroups
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	rc, err := cc.ClientConfig()
	if err != nil {
		// The error may quote the server URL, userinfo and all.
		return nil, fmt.Errorf("kubeconfig%s: %w", contextNote(s.context), redact(err))
	}
	ctxName := s.context
	if raw, err := cc.RawConfig(); err == nil && ctxName == "" {
		ctxName = raw.CurrentContext
	}
	return newProvider(s, rc, ctxName)
}

// contextNote names the context a kubeconfig error is about, when one was asked for.
func contextNote(context string) string {
	if context == "" {
		return ""
	}
	return fmt.Sprintf(" (context %q)", context)
}

// ForRESTConfig is NewProvider for a REST config already resolved (a lab's
// API server, a user of it); cfg's kubeconfig and context are not read.
func ForRESTConfig(cfg *Config, rc *rest.Config, contextName string) (diag.Provider, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return newProvider(s, rc, contextName)
}

func newProvider(s *settings, rc *rest.Config, contextName string) (*Provider, error) {
	rc = rest.CopyConfig(rc)
	if err := moveUserinfo(rc); err != nil {
		return nil, err
	}
	// Every request also obeys the context of the gather, so this bounds
	// one request and never outlives the run.
	rc.Timeout = s.requestTimeout
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "vnodediag/" + diag.BuildVersion()
	// Protobuf is several times cheaper to decode than JSON for large lists.
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", redact(err))
	}
	cs, err := kubernetes.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", redact(err))
	}
	return &Provider{set: s, rest: rc, context: contextName, client: cs, http: hc}, nil
}

// moveUserinfo takes the userinfo out of the server URL, so that no error,
// log line or report can carry it: client-go quotes request URLs in both.
// HTTP clients send URL userinfo as basic auth; that is kept when the
// kubeconfig names no other credential, and dropped in favour of the one
// it names (a token, a client certificate) otherwise.
func moveUserinfo(rc *rest.Config) error {
	if !strings.Contains(rc.Host, "@") {
		return nil
	}
	raw := rc.Host
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("kubeconfig: server %q is not a URL", diag.RedactURL(rc.Host))
	}
	if u.User == nil {
		return nil
	}
	user := u.User
	u.User = nil
	if strings.Contains(rc.Host, "://") {
		rc.Host = u.String()
	} else {
		rc.Host = strings.TrimPrefix(u.String(), "https://")
	}
	other := rc.Username != "" || rc.BearerToken != "" || rc.BearerTokenFile != "" || rc.CertData != nil || rc.CertFile != "" ||
		rc.ExecProvider != nil || rc.AuthProvider != nil
	if !other {
		rc.Username = user.Username()
		rc.Password, _ = user.Password()
	}
	return nil
}

// redactedError hides URL userinfo in an error's text and keeps the error
// itself for errors.Is and errors.As.
type redactedError struct{ err error }

func (e redactedError) Error() string { return diag.RedactURLs(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

func redact(err error) error {
	if err == nil {
		return nil
	}
	return redactedError{err}
}

// Close closes idle connections to the API server, and with them the
// goroutines that serve them.
func (p *Provider) Close() {
	utilnet.CloseIdleConnectionsFor(p.http.Transport)
}

// Name implements diag.Provider.
func (p *Provider) Name() diag.SourceName { return Source.Name() }

// Gather reads the snapshot. Nodes, pods and the server version are the
// core: if one fails the source fails. The other lists are recorded in
// PartErrors so that the checks that do not need them still run.
//
// Every request obeys ctx. When ctx ends first, the connections left idle
// are closed: a server that does not answer is not worth keeping them for.
func (p *Provider) Gather(ctx context.Context) (any, error) {
	defer func() {
		if ctx.Err() != nil {
			p.Close()
		}
	}()
	s := &Snapshot{Server: diag.RedactURL(p.rest.Host), Context: p.context, Namespace: p.set.namespace, PartErrors: map[string]error{}, detail: &once[[]Pod]{}, podNodes: &once[[]int32]{},
		nodeFacts: &once[*NodeFacts]{}}
	s.ServiceCIDRs = append(s.ServiceCIDRs, p.set.serviceCIDRs...)
	s.API = p.client

	v, err := p.serverVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API %s%s: %w", s.Server, contextNote(s.Context), redact(err))
	}
	s.Version = v

	ctx = withTracker(ctx)
	g := &parts{s: s}
	run := g.run
	run(PartNodes, true, func() error { return p.listNodes(ctx, s) })
	run(PartPods, true, func() error { return p.listPods(ctx, s) })
	run(PartDaemonSets, false, func() error { return p.listDaemonSets(ctx, s) })
	run(PartDeployments, false, func() error { return p.listDeployments(ctx, s) })
	run(PartEvents, false, func() error { return p.listPodEvents(ctx, s) })
	run(PartClusterUID, false, func() error {
		ns, err := p.client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.ClusterUID = string(ns.UID)
		return nil
	})
	run(PartNamespaces, false, func() error { return p.listNamespaces(ctx, s) })
	run(PartPersistentVolumes, false, func() error { return p.listPersistentVolumes(ctx, s) })
	p.readSingletons(ctx, g)
	if err := g.wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// parts runs the reads of a snapshot concurrently and collects their
// errors: a core part's fails the gather, another's goes to PartErrors.
type parts struct {
	s    *Snapshot
	mu   sync.Mutex
	wg   sync.WaitGroup
	core error
}

func (g *parts) run(part string, core bool, f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.mu.Lock()
			defer g.mu.Unlock()
			err = fmt.Errorf("list %s: %w", part, redact(err))
			if core {
				g.core = errors.Join(g.core, err)
			} else {
				g.s.PartErrors[part] = err
			}
		}
	}()
}

func (g *parts) wait() error {
	g.wg.Wait()
	return g.core
}

// readSingletons reads the parts that are one object or a few (ConfigMaps
// by name, the APIService, ServiceCIDRs): a one-shot run and the watch
// cache's poll read them alike.
func (p *Provider) readSingletons(ctx context.Context, g *parts) {
	s, run, mu := g.s, g.run, &g.mu
	run(PartServiceCIDRs, false, func() error {
		l, err := p.client.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			return errors.New("the server has no ServiceCIDR API (networking.k8s.io/v1, Kubernetes 1.33 and later)")
		}
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, sc := range l.Items {
			s.ServiceCIDRs = append(s.ServiceCIDRs, sc.Spec.CIDRs...)
		}
		return nil
	})
	run(PartCoreDNS, false, func() error {
		cm, err := p.configMap(ctx, "kube-system", "coredns")
		s.CoreDNS = cm
		return err
	})
	run(PartMetricsAPIService, false, func() error {
		a, err := p.metricsAPIService(ctx)
		s.MetricsAPIService = a
		return err
	})
	run(PartECIProfile, false, func() error {
		cm, err := p.configMap(ctx, ECIProfileNamespace, ECIProfileName)
		if cm != nil {
			s.ECIProfile = ParseECIProfile(cm.Data)
		}
		return err
	})
	run(PartCNIConfig, false, func() error {
		cms, err := p.configMaps(ctx, []string{"kube-system"}, CalicoConfigName)
		if err != nil {
			return err
		}
		flannel, err := p.configMaps(ctx, []string{"kube-system", "kube-flannel"}, FlannelConfigName)
		s.CNIConfigs = append(cms, flannel...)
		return err
	})
	run(PartKubeProxyConfig, false, func() error {
		for _, name := range KubeProxyConfigNames {
			cms, err := p.configMaps(ctx, []string{"kube-system"}, name)
			if err != nil {
				return err
			}
			s.KubeProxyConfigs = append(s.KubeProxyConfigs, cms...)
		}
		return nil
	})
}

// serverVersion reads /version. Discovery's ServerVersion takes no context,
// so it could outlive the run; this is the same request with one.
func (p *Provider) serverVersion(ctx context.Context) (*version.Info, error) {
	raw, err := p.client.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var v version.Info
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("/version: %w", err)
	}
	return &v, nil
}

// each pages through a list and calls fn for every item, so that no more
// than one page of full objects is held at a time.
func (p *Provider) each(ctx context.Context, part string, list func(context.Context, metav1.ListOptions) (runtime.Object, error), fn func(runtime.Object) error) error {
	t := trackerOf(ctx)
	pg := pager.New(pager.ListPageFunc(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		obj, err := list(ctx, o)
		if err == nil && t != nil {
			t.page(ctx, part, obj)
		}
		return obj, err
	}))
	pg.PageSize = p.set.pageSize
	pg.PageBufferSize = 2
	return pg.EachListItem(ctx, metav1.ListOptions{}, fn)
}

func (p *Provider) listNodes(ctx context.Context, s *Snapshot) error {
	return p.each(ctx, PartNodes, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return p.client.CoreV1().Nodes().List(ctx, o)
	}, func(o runtime.Object) error {
		n := o.(*corev1.Node)
		trimNode(n)
		s.Nodes = append(s.Nodes, n)
		return nil
	})
}

// trimNode drops the parts of a node no check reads (images, managed
// fields, annotations, attached volumes, the conditions but Ready and
// NetworkUnavailable, the system info but the kubelet's version, the
// resources but pods), which are most of a real node's size, and those
// that change with every heartbeat (resourceVersion, the conditions'
// heartbeat times).
func trimNode(n *corev1.Node) {
	trimMeta(&n.ObjectMeta)
	n.Status.Conditions = slices.DeleteFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type != corev1.NodeReady && c.Type != corev1.NodeNetworkUnavailable
	})
	// Nor what changes on every status update without saying anything a
	// check reads (so that the watch cache sees no change in it).
	for i := range n.Status.Conditions {
		n.Status.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	n.Status.Images = nil
	n.Status.VolumesAttached = nil
	n.Status.VolumesInUse = nil
	n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: intern(n.Status.NodeInfo.KubeletVersion)}
	// Most of a node's labels and its conditions' texts are those of the
	// other nodes (os, arch, zone, instance type; "KubeletReady"): one
	// copy for all.
	if len(n.Labels) > 0 {
		nl := make(map[string]string, len(n.Labels))
		for k, v := range n.Labels {
			nl[intern(k)] = intern(v)
		}
		n.Labels = nl
	}
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		c.Type, c.Status, c.Reason, c.Message = corev1.NodeConditionType(intern(string(c.Type))), corev1.ConditionStatus(intern(string(c.Status))), intern(c.Reason), intern(c.Message)
	}
	n.Status.Config = nil
	n.Status.RuntimeHandlers = nil
	n.Status.Features = nil
	// Max pods is allocatable's, else capacity's: keep the one that has
	// it, as a list of that one resource that every node with the same
	// max pods shares (a map of one entry still costs hundreds of bytes:
	// 3 MB at 5,000 nodes).
	if _, ok := n.Status.Allocatable[corev1.ResourcePods]; ok {
		n.Status.Capacity = nil
	}
	n.Status.Allocatable = maxPodsList(n.Status.Allocatable)
	n.Status.Capacity = maxPodsList(n.Status.Capacity)
}

// maxPods holds the shared lists of maxPodsList, by max pods: a few
// values in a cluster, and never more than maxPodsShared of them.
var maxPods = struct {
	sync.Mutex
	lists map[string]corev1.ResourceList
}{lists: map[string]corev1.ResourceList{}}

const maxPodsShared = 64

// maxPodsList is rl's pods alone, as a list shared with every other node
// of the same max pods (read only, as all of a snapshot is); nil when rl
// has none. Past maxPodsShared distinct values a node gets a list of its
// own.
func maxPodsList(rl corev1.ResourceList) corev1.ResourceList {
	q, ok := rl[corev1.ResourcePods]
	if !ok {
		return nil
	}
	key := q.String()
	maxPods.Lock()
	defer maxPods.Unlock()
	if shared, ok := maxPods.lists[key]; ok {
		return shared
	}
	own := corev1.ResourceList{corev1.ResourcePods: q}
	if len(maxPods.lists) < maxPodsShared {
		maxPods.lists[key] = own
	}
	return own
}

// trimMeta drops what no check reads of a node's, a Deployment's or a
// DaemonSet's metadata: managed fields, annotations (a pod template's
// are the template's own) and the resourceVersion, which changes with
// every write without saying anything a check reads.
func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.Annotations = nil
	m.ResourceVersion = ""
}

// trimDeployment drops what no check reads of a Deployment, most of its
// size: managed fields, the resourceVersion, its annotations (the pod
// template's stay), its selector, strategy and status, and of its pod
// template's spec all but the containers' names, images, commands and
// args (init containers too). Containers keep their places: a fix names
// them by index.
func trimDeployment(d *appsv1.Deployment) {
	trimMeta(&d.ObjectMeta)
	d.Spec.Selector = nil
	d.Spec.Strategy = appsv1.DeploymentStrategy{}
	d.Status = appsv1.DeploymentStatus{}
	trim := func(cs []corev1.Container) []corev1.Container {
		if cs == nil {
			return nil
		}
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args}
		}
		return out
	}
	spec := &d.Spec.Template.Spec
	*spec = corev1.PodSpec{InitContainers: trim(spec.InitContainers), Containers: trim(spec.Containers)}
}

func (p *Provider) listPods(ctx context.Context, s *Snapshot) error {
	// The first page says how many pods follow: the slice is made once at
	// its size rather than grown (growing a slice of 150,000 compact pods
	// holds the old and the new array at once, tens of MB).
	var total atomic.Int64
	return p.each(ctx, PartPods, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		l, err := p.podPage(ctx, o)
		if err == nil && o.Continue == "" && l.RemainingItemCount != nil {
			total.Store(int64(len(l.Items)) + *l.RemainingItemCount)
		}
		return l, err
	}, func(o runtime.Object) error {
		if s.Pods == nil {
			s.Pods = make([]Pod, 0, max(total.Load(), 1))
		}
		s.Pods = append(s.Pods, compactPod(o.(*corev1.Pod)))
		return nil
	})
}

// podPage lists one page of pods, decoded partially (decodePodList): the
// request the typed client makes, its body read field by field.
func (p *Provider) podPage(ctx context.Context, o metav1.ListOptions) (*corev1.PodList, error) {
	body, err := p.client.CoreV1().RESTClient().Get().Namespace(p.set.namespace).Resource("pods").
		VersionedParams(&o, scheme.ParameterCodec).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	return decodePodList(body)
}

// configMap gets one ConfigMap without its managed fields; nil when it
// does not exist.
func (p *Provider) configMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm, err := p.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cm.ManagedFields = nil
	return cm, nil
}

// configMaps gets the ConfigMap name from the first of namespaces that has
// it: at most one, since a component reads one.
func (p *Provider) configMaps(ctx context.Context, namespaces []string, name string) ([]*corev1.ConfigMap, error) {
	for _, ns := range namespaces {
		cm, err := p.configMap(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if cm != nil {
			return []*corev1.ConfigMap{cm}, nil
		}
	}
	return nil, nil
}

// intern returns the one copy of a string many pods share (a namespace, a
// node, an image), so that the decoded copies go with their page; the
// copy itself goes once no pod holds it.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// parseIP parses a pod IP, unmapped; the zero Addr when it does not parse.
func parseIP(s string) netip.Addr {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func compactPod(p *corev1.Pod) Pod {
	c := Pod{
		Namespace:   intern(p.Namespace),
		Name:        p.Name,
		NodeName:    intern(p.Spec.NodeName),
		HostNetwork: p.Spec.HostNetwork,
		Phase:       PhaseOf(p.Status.Phase),
	}
	ref := metav1.GetControllerOf(p)
	if ref != nil {
		c.OwnerKind = intern(ref.Kind)
	}
	var d PodDetail
	if c.NodeName == "" {
		d.PinnedNode = pinnedNode(p)
	}
	for _, k := range keptAnnotations {
		if v, ok := p.Annotations[k]; ok {
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[k] = v
		}
	}
	for _, sts := range [2][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range sts {
			if st := &sts[i]; st.State.Waiting != nil {
				w := st.State.Waiting
				d.Waiting = append(d.Waiting, ContainerWaiting{Container: st.Name, Image: st.Image, Reason: w.Reason, Message: w.Message})
			}
		}
	}
	if d.Waiting != nil && len(p.Spec.Containers) > 0 {
		d.Images = make([]string, len(p.Spec.Containers))
		for i, ctr := range p.Spec.Containers {
			d.Images[i] = intern(ctr.Image)
		}
	}
	unbound := c.NodeName == "" && (c.Phase == PhasePending || c.Phase == PhaseNone)
	if unbound {
		d.Scheduling = &PodScheduling{NodeSelector: p.Spec.NodeSelector, Tolerations: p.Spec.Tolerations}
		if p.Spec.Affinity != nil {
			d.Scheduling.NodeAffinity = p.Spec.Affinity.NodeAffinity
		}
	}
	if unbound || toleratesVNode(p.Spec.Tolerations) {
		d.Labels = p.Labels
	}
	d.Storage = podStorage(p)
	if d.PinnedNode != "" || d.Annotations != nil || d.Waiting != nil || d.Labels != nil || d.Scheduling != nil || d.Storage != nil {
		c.Detail = &d
	}
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
	if len(ips) == 1 {
		if ip := parseIP(ips[0].IP); ip.IsValid() && ip.Zone() == "" {
			c.ip = packIP(ip) // what SetIPs does, without a slice to drop
			ips = nil
		}
	}
	if len(ips) > 0 {
		parsed := make([]netip.Addr, len(ips))
		for i, ip := range ips {
			parsed[i] = parseIP(ip.IP)
		}
		c.SetIPs(parsed)
	}
	if ref != nil && (c.Detail != nil || c.OwnerKind == "DaemonSet") {
		c.OwnerName = intern(ref.Name)
	}
	return c
}

// toleratesVNode reports whether tolerations let a pod onto a VNode: the
// pods on VNodes and the pods meant for them. Only their labels are kept,
// which is what keeps the snapshot small: most pods tolerate no VNode.
func toleratesVNode(tols []corev1.Toleration) bool {
	for _, t := range tols {
		if t.Key == TaintVKProvider || t.Key == TaintVNode || t.Key == "" && t.Operator == corev1.TolerationOpExists {
			return true
		}
	}
	return false
}

// podStorage keeps a pod's network volumes when it sets fsGroup and lets
// the kubelet change the ownership of every file on each mount (no
// fsGroupChangePolicy OnRootMismatch), nil otherwise.
func podStorage(p *corev1.Pod) *PodStorage {
	sc := p.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil || sc.FSGroupChangePolicy != nil && *sc.FSGroupChangePolicy == corev1.FSGroupChangeOnRootMismatch {
		return nil
	}
	var vols []PodVolume
	for _, v := range p.Spec.Volumes {
		pv := PodVolume{Name: v.Name}
		switch {
		case v.PersistentVolumeClaim != nil:
			pv.ClaimName = v.PersistentVolumeClaim.ClaimName
		case v.CSI != nil:
			pv.CSIDriver, pv.Server = v.CSI.Driver, v.CSI.VolumeAttributes["server"]
		case v.FlexVolume != nil:
			pv.FlexDriver = v.FlexVolume.Driver
			pv.Server = v.FlexVolume.Options["server"]
		case v.NFS != nil:
			pv.Server = v.NFS.Server
		default:
			continue
		}
		vols = append(vols, pv)
	}
	if len(vols) == 0 {
		return nil
	}
	st := &PodStorage{FSGroup: *sc.FSGroup, Volumes: vols}
	if sc.FSGroupChangePolicy != nil {
		st.FSGroupChangePolicy = *sc.FSGroupChangePolicy
	}
	return st
}

// pinnedNode is the one node named by the pod's required node affinity
// matchFields metadata.name In [...], empty when there is not exactly one.
func pinnedNode(p *corev1.Pod) string {
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range t.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}

func (p *Provider) listDaemonSets(ctx context.Context, s *Snapshot) error {
	return p.each(ctx, PartDaemonSets, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return p.client.AppsV1().DaemonSets(p.set.namespace).List(ctx, o)
	}, func(o runtime.Object) error {
		ds := o.(*appsv1.DaemonSet)
		trimDaemonSet(ds)
		s.DaemonSets = append(s.DaemonSets, ds)
		return nil
	})
}

// trimDaemonSet drops what no check reads of a DaemonSet: managed fields,
// the resourceVersion, its annotations (the pod template's stay), its
// selector, update strategy and status, and of its pod template's spec all
// but what places its pods (node name, node selector, affinity,
// tolerations, host network).
func trimDaemonSet(ds *appsv1.DaemonSet) {
	trimMeta(&ds.ObjectMeta)
	ds.Spec.Selector = nil
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{}
	ds.Status = appsv1.DaemonSetStatus{}
	spec := &ds.Spec.Template.Spec
	*spec = corev1.PodSpec{NodeName: spec.NodeName, NodeSelector: spec.NodeSelector, Affinity: spec.Affinity,
		Tolerations: spec.Tolerations, HostNetwork: spec.HostNetwork}
}

func (p *Provider) listDeployments(ctx context.Context, s *Snapshot) error {
	return p.each(ctx, PartDeployments, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return p.client.AppsV1().Deployments(p.set.namespace).List(ctx, o)
	}, func(o runtime.Object) error {
		d := o.(*appsv1.Deployment)
		trimDeployment(d)
		s.Deployments = append(s.Deployments, d)
		return nil
	})
}

// metricsAPIService reads the APIService through the REST client, so that
// the aggregator's clientset is not needed for one object.
func (p *Provider) metricsAPIService(ctx context.Context) (*APIService, error) {
	const name = "v1beta1.metrics.k8s.io"
	raw, err := p.client.Discovery().RESTClient().Get().
		AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/"+name).
		SetHeader("Accept", "application/json").DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var obj struct {
		Spec struct {
			Service *struct{ Namespace, Name string } `json:"service"`
		} `json:"spec"`
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("apiservice %s: %w", name, err)
	}
	a := &APIService{Name: name, Available: "Unknown"}
	if obj.Spec.Service != nil {
		a.Service = obj.Spec.Service.Namespace + "/" + obj.Spec.Service.Name
	}
	for _, c := range obj.Status.Conditions {
		if c.Type == "Available" {
			a.Available, a.Reason, a.Message = c.Status, c.Reason, c.Message
		}
	}
	return a, nil
}

func (p *Provider) listNamespaces(ctx context.Context, s *Snapshot) error {
	s.NamespaceLabels = map[string]map[string]string{}
	return p.each(ctx, PartNamespaces, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return p.client.CoreV1().Namespaces().List(ctx, o)
	}, func(o runtime.Object) error {
		ns := o.(*corev1.Namespace)
		s.NamespaceLabels[ns.Name] = ns.Labels
		return nil
	})
}

func (p *Provider) listPersistentVolumes(ctx context.Context, s *Snapshot) error {
	return p.each(ctx, PartPersistentVolumes, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return p.client.CoreV1().PersistentVolumes().List(ctx, o)
	}, func(o runtime.Object) error {
		s.PersistentVolumes = append(s.PersistentVolumes, compactPV(o.(*corev1.PersistentVolume)))
		return nil
	})
}

// listPodEvents keeps the Warning events about pods; the field selector
// makes the server do the filtering, so no per-pod call is ever made.
func (p *Provider) listPodEvents(ctx context.Context, s *Snapshot) error {
	return p.each(ctx, PartEvents, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		o.FieldSelector = podEventSelector
		return p.client.CoreV1().Events(p.set.namespace).List(ctx, o)
	}, func(o runtime.Object) error {
		s.PodEvents = append(s.PodEvents, compactEvent(o.(*corev1.Event)))
		return nil
	})
}

// compactPV is the part of a PV checks read.
func compactPV(pv *corev1.PersistentVolume) PersistentVolume {
	c := PersistentVolume{Name: pv.Name, Phase: pv.Status.Phase}
	if r := pv.Spec.ClaimRef; r != nil {
		c.ClaimNamespace, c.ClaimName = r.Namespace, r.Name
	}
	switch src := pv.Spec.PersistentVolumeSource; {
	case src.CSI != nil:
		c.CSIDriver, c.Server = src.CSI.Driver, src.CSI.VolumeAttributes["server"]
	case src.FlexVolume != nil:
		c.FlexDriver = src.FlexVolume.Driver
		c.Server = src.FlexVolume.Options["server"]
	case src.NFS != nil:
		c.Server = src.NFS.Server
	}
	return c
}

// podEventSelector selects the Warning events about pods.
const podEventSelector = "involvedObject.kind=Pod,type=Warning"

func compactEvent(e *corev1.Event) Event {
	return Event{Namespace: e.InvolvedObject.Namespace, Pod: e.InvolvedObject.Name, Reason: e.Reason, Message: e.Message, Count: e.Count}
}

// Example is the `kubernetes` section of `vnodediag config example`: every field,
// commented.
const Example = `kubernetes:
  kubeconfig: ~/.kube/hybrid.yaml   # default: --kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster
  context: prod-hybrid              # default: current context (--context)
  # cluster: hybrid                 # the kubeconfig cluster to use (--cluster)
  # user: diag-reader               # the kubeconfig user to use (--user)
  # namespace: team-a               # only this namespace's pods, DaemonSets, Deployments, events (-n)
  # as: system:serviceaccount:vnodediag:vnodediag   # impersonate (--as), and asGroups: [...] (--as-group)
  serviceCIDRs: [10.96.0.0/12]      # added to the ServiceCIDR objects (clusters before 1.33 have none)
  pageSize: 500                     # list page size
  requestTimeout: 30s               # each API request
`
