package kube

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Snapshot is the part of the cluster the checks read, taken once per run.
// Checks must not modify it: under `serve` its slices are shared with the
// watch cache (copy a slice before sorting it), which may write them again
// once the run that gathered the snapshot released it (Release): nothing
// may keep a snapshot's slices past its run.
// Pods are kept compact (only the fields checks use) so that a snapshot of
// 150,000 pods stays small.
type Snapshot struct {
	Server  string
	Context string
	// Namespace is the one namespace the namespaced lists were scoped to
	// (--namespace); empty means all namespaces.
	Namespace  string
	Version    *version.Info
	ClusterUID string

	Nodes      []*corev1.Node
	Pods       []Pod
	DaemonSets []*appsv1.DaemonSet
	// Nodes, DaemonSets and Deployments are trimmed to what checks read
	// (trimNode, trimDaemonSet, trimDeployment): of a Deployment's pod
	// template only the containers' names, images, commands and args are
	// kept, of a DaemonSet's what places its pods.
	Deployments []*appsv1.Deployment
	// ServiceCIDRs from networking.k8s.io/v1 ServiceCIDR objects plus the
	// configured ones.
	ServiceCIDRs []string

	// CoreDNS is the kube-system/coredns ConfigMap, nil when absent.
	CoreDNS *corev1.ConfigMap
	// MetricsAPIService is the v1beta1.metrics.k8s.io APIService, nil when absent.
	MetricsAPIService *APIService
	// PodEvents are the Warning events about pods (image pulls, scheduling).
	PodEvents []Event
	// NamespaceLabels are the labels of every namespace, for selectors
	// that match namespaces (the eci-profile's namespaceLabels).
	NamespaceLabels map[string]map[string]string
	// PersistentVolumes are the PVs, compact.
	PersistentVolumes []PersistentVolume
	// ECIProfile is the parsed kube-system/eci-profile ConfigMap, nil when absent.
	ECIProfile *ECIProfile
	// CNIConfigs are the CNI's ConfigMaps that were found: calico-config
	// (kube-system) and kube-flannel-cfg (kube-system, or kube-flannel as
	// newer Flannel manifests ship it).
	CNIConfigs []*corev1.ConfigMap
	// KubeProxyConfigs are kube-proxy's ConfigMaps in kube-system that were
	// found: kube-proxy (kubeadm), kube-proxy-worker and kube-proxy-master (ACK).
	KubeProxyConfigs []*corev1.ConfigMap

	// API reads what the snapshot does not hold (an agent pod's log), for
	// sources that use this one. Nothing may write through it; the RBAC
	// vnodediag ships grants no write either.
	API kubernetes.Interface

	// PartErrors holds the lists that failed while the core (nodes, pods)
	// succeeded; checks that need a failed part report ERROR for it.
	PartErrors map[string]error

	// release lets the watch cache write the arrays the snapshot shares
	// with it again (see Release); nil for a one-shot gather's snapshot
	// and for the copies Only makes.
	release func()
	// generation is the watch cache's generation the snapshot was read
	// at; 0 for a snapshot of a one-shot gather.
	generation uint64
	// parts are the generations of its parts, by part name (nil for a
	// one-shot gather's).
	parts map[string]uint64
	// detail holds the pods with a Detail (PodsWithDetail), podNodes each
	// pod's node (PodNodes); nil in a snapshot not made by a gather.
	detail   *once[[]Pod]
	podNodes *once[[]int32]
	// nodeFacts holds NodeFacts; a watch cache's snapshots share it while
	// the nodes do not change.
	nodeFacts *once[*NodeFacts]
}

// NodeFacts is what checks derive from the nodes alone: found once for a
// state of the nodes and shared by every check that asks (and, in a
// daemon, by every run until a node changes), instead of each check
// classifying and parsing 5,000 nodes again. Callers must not modify it.
type NodeFacts struct {
	// Classes and PodCIDRs are ClassOf and PodCIDRs of each node, by its
	// position in the snapshot's Nodes.
	Classes  []NodeClass
	PodCIDRs [][]netip.Prefix
	// ByName are the nodes' positions, in the order of their names.
	ByName []int
	// VNodes are the nodes of ClassVirtual, sorted by name.
	VNodes []*corev1.Node
}

// FactsOf finds NodeFacts for nodes.
func FactsOf(nodes []*corev1.Node) *NodeFacts {
	f := &NodeFacts{Classes: make([]NodeClass, len(nodes)), PodCIDRs: make([][]netip.Prefix, len(nodes)), ByName: make([]int, len(nodes))}
	for i, n := range nodes {
		f.Classes[i], f.PodCIDRs[i], f.ByName[i] = ClassOf(n), PodCIDRs(n), i
		if f.Classes[i] == ClassVirtual {
			f.VNodes = append(f.VNodes, n)
		}
	}
	sort.SliceStable(f.ByName, func(a, b int) bool { return nodes[f.ByName[a]].Name < nodes[f.ByName[b]].Name })
	sort.Slice(f.VNodes, func(a, b int) bool { return f.VNodes[a].Name < f.VNodes[b].Name })
	return f
}

// NodeFacts is FactsOf the snapshot's Nodes, found once (see NodeFacts).
func (s *Snapshot) NodeFacts() *NodeFacts {
	return s.nodeFacts.get(func() *NodeFacts { return FactsOf(s.Nodes) })
}

// once is what several checks would each find by a pass over every pod:
// found the first time one asks, then shared by every check of the run
// (and the copies Only makes that hold what it is found from).
type once[T any] struct {
	sync.Once
	v T
}

// get is o's value, found by find the first time; a nil o (a snapshot
// made by hand) finds it for this call alone.
func (o *once[T]) get(find func() T) T {
	if o == nil {
		return find()
	}
	o.Do(func() { o.v = find() })
	return o.v
}

// PodNodes is, for each pod of Pods, the position in Nodes of the node it
// is bound to; -1 for an unbound pod and for one whose node is not in the
// snapshot. The checks that walk pods per node read it instead of each
// looking every pod's node up by name. Found once per snapshot made by a
// gather; callers must not modify it.
func (s *Snapshot) PodNodes() []int32 {
	return s.podNodes.get(func() []int32 { return NodePositions(s.Nodes, s.Pods) })
}

// NodePositions is PodNodes for nodes and pods.
func NodePositions(nodes []*corev1.Node, pods []Pod) []int32 {
	byName := make(map[string]int32, len(nodes))
	for i, n := range nodes {
		byName[n.Name] = int32(i)
	}
	// The pods of one node mostly share one copy of its name (the watch
	// cache's nodeNames): a small table keyed by the copy's address
	// answers them without hashing the name. Two live strings at one
	// address with one length are one string, and every pod's name stays
	// alive for the whole loop.
	type seen struct {
		p  *byte
		n  int
		at int32
	}
	table := make([]seen, 1<<13)
	at := make([]int32, len(pods))
	for i := range pods {
		name := pods[i].NodeName
		if name == "" {
			at[i] = -1
			continue
		}
		p := unsafe.StringData(name)
		slot := &table[(uint64(uintptr(unsafe.Pointer(p)))*0x9E3779B97F4A7C15)>>(64-13)]
		if slot.p == p && slot.n == len(name) {
			at[i] = slot.at
			continue
		}
		j, ok := byName[name]
		if !ok {
			j = -1
		}
		*slot = seen{p: p, n: len(name), at: j}
		at[i] = j
	}
	return at
}

// PodsWithDetail are the pods that have a Detail (unbound, waiting on a
// container, mounting network volumes, holding labels or a kept
// annotation), in the order of Pods: all that the checks reading only
// Detail's fields need to walk, a small part of a large cluster's pods.
// Found once per snapshot made by a gather; callers must not modify it.
func (s *Snapshot) PodsWithDetail() []Pod {
	return s.detail.get(func() []Pod {
		var out []Pod
		for i := range s.Pods {
			if s.Pods[i].Detail != nil {
				out = append(out, s.Pods[i])
			}
		}
		return out
	})
}

// Release implements diag.Releaser: the run that gathered s has ended
// and nothing reads s (nor a copy Only made) any more, so the watch cache
// may change what s shares with it in place instead of copying it. A
// snapshot never released only costs the cache a copy at its next change.
func (s *Snapshot) Release() {
	if s.release != nil {
		s.release()
	}
}

// Generation implements diag.Generational: two snapshots of one watch
// cache with the same non-zero generation hold the same facts, so a
// daemon reuses the results of the checks that read them. A one-shot
// gather's snapshot has none (0).
func (s *Snapshot) Generation() uint64 { return s.generation }

// PartGeneration implements diag.Parted: the generation of one part of a
// watch cache's snapshot.
func (s *Snapshot) PartGeneration(part string) (uint64, bool) {
	g, ok := s.parts[part]
	return g, ok
}

// Only implements diag.Parted: a copy of s with only the named parts (and
// their PartErrors); the server, context, namespace and API client stay.
// A check that names the parts it reads (diag.Check.Reads) sees this.
func (s *Snapshot) Only(parts []string) any {
	o := &Snapshot{Server: s.Server, Context: s.Context, Namespace: s.Namespace, API: s.API, generation: s.generation, parts: s.parts}
	if slices.Contains(parts, PartNodes) && slices.Contains(parts, PartPods) {
		o.podNodes = s.podNodes
	}
	if slices.Contains(parts, PartNodes) {
		o.nodeFacts = s.nodeFacts
	}
	for _, part := range parts {
		if err, failed := s.PartErrors[part]; failed {
			if o.PartErrors == nil {
				o.PartErrors = map[string]error{}
			}
			o.PartErrors[part] = err
		}
		switch part {
		case PartNodes:
			o.Nodes = s.Nodes
		case PartPods:
			o.Pods, o.detail = s.Pods, s.detail
		case PartVersion:
			o.Version = s.Version
		case PartDaemonSets:
			o.DaemonSets = s.DaemonSets
		case PartDeployments:
			o.Deployments = s.Deployments
		case PartServiceCIDRs:
			o.ServiceCIDRs = s.ServiceCIDRs
		case PartCoreDNS:
			o.CoreDNS = s.CoreDNS
		case PartMetricsAPIService:
			o.MetricsAPIService = s.MetricsAPIService
		case PartEvents:
			o.PodEvents = s.PodEvents
		case PartClusterUID:
			o.ClusterUID = s.ClusterUID
		case PartNamespaces:
			o.NamespaceLabels = s.NamespaceLabels
		case PartPersistentVolumes:
			o.PersistentVolumes = s.PersistentVolumes
		case PartECIProfile:
			o.ECIProfile = s.ECIProfile
		case PartCNIConfig:
			o.CNIConfigs = s.CNIConfigs
		case PartKubeProxyConfig:
			o.KubeProxyConfigs = s.KubeProxyConfigs
		}
	}
	return o
}

// The parts of a snapshot, as checks name what they read (diag.Check.Reads).
// Nodes and pods are the core: without them there is no snapshot.
const (
	PartNodes = "nodes"
	PartPods  = "pods"
	// PartVersion is the API server's version.
	PartVersion = "version"
)

// The parts of a snapshot besides nodes and pods: each may fail alone, and
// then only the checks that read it ERROR.
const (
	PartDaemonSets        = "daemonsets"
	PartDeployments       = "deployments"
	PartServiceCIDRs      = "servicecidrs"
	PartCoreDNS           = "configmap kube-system/coredns"
	PartMetricsAPIService = "apiservice v1beta1.metrics.k8s.io"
	PartEvents            = "events"
	PartClusterUID        = "namespace kube-system"
	PartNamespaces        = "namespaces"
	PartPersistentVolumes = "persistentvolumes"
	PartECIProfile        = "configmap kube-system/eci-profile"
	PartCNIConfig         = "configmaps calico-config, kube-flannel-cfg"
	PartKubeProxyConfig   = "configmaps kube-system/kube-proxy, kube-proxy-worker, kube-proxy-master"
)

// polledParts are the parts a watch cache polls instead of watching.
var polledParts = []string{PartVersion, PartServiceCIDRs, PartCoreDNS, PartMetricsAPIService, PartECIProfile, PartCNIConfig, PartKubeProxyConfig}

// The CNI and kube-proxy ConfigMaps the snapshot reads, by name.
const (
	CalicoConfigName  = "calico-config"
	FlannelConfigName = "kube-flannel-cfg"
)

// KubeProxyConfigNames are the names kube-proxy's configuration goes by.
var KubeProxyConfigNames = []string{"kube-proxy", "kube-proxy-worker", "kube-proxy-master"}

// Unread is the ERROR result of a check that needs a part of the snapshot
// that failed to list, nil when the part was read.
func (s *Snapshot) Unread(part string) *pb.Result { return UnreadPart(part, s.PartErrors[part]) }

// UnreadPart is the ERROR result for part, which failed with err; nil for
// a nil err.
func UnreadPart(part string, err error) *pb.Result {
	if err == nil {
		return nil
	}
	res := diag.Errorf("could not read %s: %v", part, err)
	res.Evidence = []*pb.Evidence{diag.Ev(part, "listed", err.Error())}
	return res
}

// Pod is the compact form of a pod. What only some pods have is kept in
// Detail, nil for most: a pod without it takes 120 bytes here.
type Pod struct {
	Namespace string
	Name      string
	NodeName  string
	// OwnerKind is the kind of the pod's controller ("ReplicaSet",
	// "DaemonSet", "Job"), empty without one.
	OwnerKind string
	// OwnerName is the controller's name, kept only for the pods a check
	// groups by workload: DaemonSet pods and pods with a Detail (unbound,
	// waiting, or mounting network volumes); empty for the others. Most
	// pods of a large cluster are neither, and their owners' names were
	// the largest part of a compact pod.
	OwnerName string
	// ip is the pod's one IP, parsed once when the pod is read (see
	// AppendIPs), kept without a pointer: a netip.Addr holds one, and the
	// garbage collector follows it for every pod of the watch cache on
	// every collection (about a seventh of what the compact pods cost a
	// collection, BenchmarkCollection).
	ip          packedIP
	Phase       PodPhase
	HostNetwork bool
	Detail      *PodDetail
}

// PodPhase is a pod's status.phase in one byte (a compact pod of 150,000
// keeps one each).
type PodPhase uint8

// The pod phases; PhaseNone is a pod without one yet.
const (
	PhaseNone PodPhase = iota
	PhasePending
	PhaseRunning
	PhaseSucceeded
	PhaseFailed
	// PhaseUnknown is "Unknown", and a phase this release does not know.
	PhaseUnknown
)

var phaseNames = [...]corev1.PodPhase{"", corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// PhaseOf is the PodPhase of an API phase.
func PhaseOf(p corev1.PodPhase) PodPhase {
	for i, n := range phaseNames {
		if n == p {
			return PodPhase(i)
		}
	}
	return PhaseUnknown
}

// String is the phase's API name, empty for PhaseNone.
func (p PodPhase) String() string {
	if int(p) < len(phaseNames) {
		return string(phaseNames[p])
	}
	return string(corev1.PodUnknown)
}

// PodDetail is what only some pods have; read it through Pod's methods,
// which are nil-safe.
type PodDetail struct {
	// PinnedNode is the node an unbound pod is pinned to by a required node
	// affinity term matchFields metadata.name In [<node>], which is how the
	// DaemonSet controller targets its pods before the scheduler binds them.
	PinnedNode string
	// Annotations holds only the annotations some check reads.
	Annotations map[string]string
	// Waiting holds the waiting state of each container (reason, message).
	Waiting []ContainerWaiting
	// PodIPs are the IPs of a pod with more than one (dual-stack) or with
	// one that does not parse; a pod with one IP keeps it in place.
	PodIPs []netip.Addr
	// Images are the images of the pod's containers, kept only for a pod
	// with a waiting container (an image pull may be what it waits for).
	Images []string
	// Labels are kept only for the pods selectors are matched against:
	// unbound pods and pods that tolerate a VNode taint (toleratesVNode).
	Labels map[string]string
	// Scheduling is kept only for unbound pods.
	Scheduling *PodScheduling
	// Storage is kept only for pods that set fsGroup without
	// fsGroupChangePolicy OnRootMismatch and mount a network volume.
	Storage *PodStorage
}

// EnsureDetail returns p's Detail, made when p has none.
func (p *Pod) EnsureDetail() *PodDetail {
	if p.Detail == nil {
		p.Detail = &PodDetail{}
	}
	return p.Detail
}

// PinnedNode is Detail.PinnedNode, empty without Detail.
func (p *Pod) PinnedNode() string {
	if p.Detail == nil {
		return ""
	}
	return p.Detail.PinnedNode
}

// Annotations is Detail.Annotations, nil without Detail.
func (p *Pod) Annotations() map[string]string {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Annotations
}

// Waiting is Detail.Waiting, nil without Detail.
func (p *Pod) Waiting() []ContainerWaiting {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Waiting
}

// AppendIPs appends the pod's IPs (status.podIPs, else status.podIP),
// parsed once, when the pod is read, to dst and returns it; an address
// that does not parse (the API server validates them) is the zero Addr.
// A caller looping over pods passes the last call's slice, cut to zero
// length, and allocates nothing for the one IP most pods have.
func (p *Pod) AppendIPs(dst []netip.Addr) []netip.Addr {
	if p.Detail != nil && p.Detail.PodIPs != nil {
		return append(dst, p.Detail.PodIPs...)
	}
	if ip, ok := p.ip.addr(); ok {
		return append(dst, ip)
	}
	return dst
}

// SetIPs sets what AppendIPs appends: one valid address without a zone
// (a pod's never has one) is kept in place (no slice for the IP most pods
// have), any other list in Detail.
func (p *Pod) SetIPs(ips []netip.Addr) {
	p.ip = packedIP{}
	if p.Detail != nil {
		p.Detail.PodIPs = nil
	}
	switch {
	case len(ips) == 1 && ips[0].IsValid() && ips[0].Zone() == "":
		p.ip = packIP(ips[0])
	case len(ips) > 0:
		p.EnsureDetail().PodIPs = ips
	}
}

// packedIP is an IP address without a zone as bytes: an IPv4 address in
// the first four, an IPv6 one in all sixteen; family 0 is none.
type packedIP struct {
	bytes  [16]byte
	family uint8 // 0, 4 or 6
}

func packIP(ip netip.Addr) packedIP {
	if ip.Is4() {
		var p packedIP
		b := ip.As4()
		copy(p.bytes[:], b[:])
		p.family = 4
		return p
	}
	return packedIP{bytes: ip.As16(), family: 6}
}

// addr is the address packed, false for none.
func (p packedIP) addr() (netip.Addr, bool) {
	switch p.family {
	case 4:
		return netip.AddrFrom4([4]byte(p.bytes[:4])), true
	case 6:
		return netip.AddrFrom16(p.bytes), true
	}
	return netip.Addr{}, false
}

// Images is Detail.Images, nil without Detail.
func (p *Pod) Images() []string {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Images
}

// Labels is Detail.Labels, nil without Detail.
func (p *Pod) Labels() map[string]string {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Labels
}

// Scheduling is Detail.Scheduling, nil without Detail.
func (p *Pod) Scheduling() *PodScheduling {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Scheduling
}

// Storage is Detail.Storage, nil without Detail.
func (p *Pod) Storage() *PodStorage {
	if p.Detail == nil {
		return nil
	}
	return p.Detail.Storage
}

// PodScheduling is what decides where an unbound pod may go.
type PodScheduling struct {
	NodeSelector map[string]string
	// NodeAffinity is the pod's node affinity; pod (anti-)affinity is not kept.
	NodeAffinity *corev1.NodeAffinity
	Tolerations  []corev1.Toleration
}

// PodStorage is a pod's volume ownership setting and its network volumes.
type PodStorage struct {
	FSGroup int64
	// FSGroupChangePolicy is empty when unset (the kubelet's default, Always).
	FSGroupChangePolicy corev1.PodFSGroupChangePolicy
	Volumes             []PodVolume
}

// PodVolume is a pod volume that may be a network file system: a claim, a
// CSI or FlexVolume driver, or an NFS server.
type PodVolume struct {
	Name       string
	ClaimName  string
	CSIDriver  string
	FlexDriver string
	// Server is the file server: NFS's server, or the server option or
	// volume attribute of a NAS FlexVolume or CSI volume.
	Server string
}

// PersistentVolume is the compact form of a PV.
type PersistentVolume struct {
	Name  string
	Phase corev1.PersistentVolumePhase
	// ClaimNamespace and ClaimName name the claim the PV is bound to.
	ClaimNamespace, ClaimName string
	CSIDriver                 string
	FlexDriver                string
	// Server is as in PodVolume.
	Server string
}

// ContainerWaiting is why a container is not running.
type ContainerWaiting struct {
	Container string
	Image     string
	Reason    string
	Message   string
}

// Describe is the source's one-line description in the report.
func (s *Snapshot) Describe() string {
	v := "unknown version"
	if s.Version != nil {
		v = s.Version.GitVersion
	}
	scope := "all namespaces"
	if s.Namespace != "" {
		scope = "namespace " + s.Namespace
	}
	ctx := ""
	if s.Context != "" {
		ctx = "context " + s.Context + ", "
	}
	return fmt.Sprintf("%s%s (%s): %d nodes, %d pods, %d daemonsets, %d deployments (%s)",
		ctx, s.Server, v, len(s.Nodes), len(s.Pods), len(s.DaemonSets), len(s.Deployments), scope)
}

// APIService is the part of an apiregistration.k8s.io/v1 APIService checks read.
type APIService struct {
	Name      string `json:"-"`
	Service   string // namespace/name of the backing Service, empty for local
	Available string // status of the Available condition: True, False, Unknown
	Reason    string
	Message   string
}

// Event is the compact form of a core/v1 Event about a pod.
type Event struct {
	Namespace string
	Pod       string
	Reason    string
	Message   string
	Count     int32
}

// Identify returns the cluster identity of a run for the report header.
func Identify(in *diag.Inputs) *pb.ClusterIdentity {
	s := Source.Get(in)
	if s == nil {
		return nil
	}
	id := &pb.ClusterIdentity{Server: s.Server, Context: s.Context, Uid: s.ClusterUID}
	if s.Version != nil {
		id.Version = s.Version.GitVersion
	}
	return id
}
