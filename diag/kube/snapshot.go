package kube

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Snapshot is the part of the cluster the checks read, taken once per run.
// Pods are kept compact (only the fields checks use) so that a snapshot of
// 150,000 pods stays small.
type Snapshot struct {
	Server     string
	Context    string
	Version    *version.Info
	ClusterUID string

	Nodes       []*corev1.Node
	Pods        []Pod
	DaemonSets  []*appsv1.DaemonSet
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

	// PartErrors holds the lists that failed while the core (nodes, pods)
	// succeeded; checks that need a failed part report ERROR for it.
	PartErrors map[string]error
}

// Pod is the compact form of a pod.
type Pod struct {
	Namespace   string
	Name        string
	NodeName    string
	HostNetwork bool
	Phase       corev1.PodPhase
	PodIPs      []string
	// Owner is the controller owner, e.g. "DaemonSet/kube-proxy".
	OwnerKind string
	OwnerName string
	// PinnedNode is the node an unbound pod is pinned to by a required node
	// affinity term matchFields metadata.name In [<node>], which is how the
	// DaemonSet controller targets its pods before the scheduler binds them.
	PinnedNode string
	Images     []string
	// Annotations holds only the annotations some check reads.
	Annotations map[string]string
	// Waiting holds the waiting state of each container (reason, message).
	Waiting []ContainerWaiting
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
	return fmt.Sprintf("%s (%s): %d nodes, %d pods, %d daemonsets, %d deployments",
		s.Server, v, len(s.Nodes), len(s.Pods), len(s.DaemonSets), len(s.Deployments))
}

// From returns the snapshot of a run; nil if the kube source was not gathered.
func From(in *diag.Inputs) *Snapshot {
	s, _ := in.Value(diag.SourceKube).(*Snapshot)
	return s
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
	s := From(in)
	if s == nil {
		return nil
	}
	id := &pb.ClusterIdentity{Server: s.Server, Context: s.Context, Uid: s.ClusterUID}
	if s.Version != nil {
		id.Version = s.Version.GitVersion
	}
	return id
}
