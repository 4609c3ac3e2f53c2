package kube

import (
	"bytes"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// A one-shot run reads pods from their protobuf bytes, field by field,
// keeping only what compactPod reads: most of a pod (environment, probes,
// resources, mounts, managed fields, conditions, container IDs) is never
// decoded, so it is never allocated, and the garbage collector (most of the
// CPU of a large list when whole pods are decoded) has a fraction of the
// work. The pod it builds is partial; compactPod, the one place that turns
// a pod into its compact form, makes of it exactly what it makes of the
// whole pod (TestPodWireMatchesWholeDecode holds the two together).

// protobufMagic starts every protobuf body of the API server: the
// envelope is a runtime.Unknown whose raw field holds the object.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// Field numbers of k8s.io/api/core/v1 and apimachinery's generated.proto.
const (
	unknownRaw = 2 // runtime.Unknown.raw

	listMetadata = 1 // PodList.metadata
	listItems    = 2 // PodList.items

	podMetadata = 1
	podSpec     = 2
	podStatus   = 3

	metaName            = 1
	metaNamespace       = 3
	metaLabels          = 11
	metaAnnotations     = 12
	metaOwnerReferences = 13

	specVolumes         = 1
	specContainers      = 2
	specNodeSelector    = 7
	specNodeName        = 10
	specHostNetwork     = 11
	specSecurityContext = 14
	specAffinity        = 18
	specTolerations     = 22

	containerImage = 2

	tolerationKey      = 1
	tolerationOperator = 2

	statusPhase                 = 1
	statusPodIP                 = 6
	statusContainerStatuses     = 8
	statusInitContainerStatuses = 10
	statusPodIPs                = 12

	podIPIP = 1

	ctrStatusName  = 1
	ctrStatusState = 2
	ctrStatusImage = 6

	stateWaiting   = 1
	waitingReason  = 1
	waitingMessage = 2

	mapKey   = 1
	mapValue = 2
)

// decodePodList decodes a page of pods as the API server sent it: in
// protobuf, pods partial (see above); a body in another encoding (JSON) is
// decoded whole.
func decodePodList(body []byte) (*corev1.PodList, error) {
	if !bytes.HasPrefix(body, protobufMagic) {
		l := &corev1.PodList{}
		if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, l); err != nil {
			return nil, fmt.Errorf("decode pod list: %w", err)
		}
		return l, nil
	}
	var raw []byte
	err := eachField(body[len(protobufMagic):], func(num protowire.Number, typ protowire.Type, b []byte) error {
		if num == unknownRaw && typ == protowire.BytesType {
			raw = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode pod list envelope: %w", err)
	}
	l := &corev1.PodList{}
	err = eachField(raw, func(num protowire.Number, typ protowire.Type, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case listMetadata:
			return l.ListMeta.Unmarshal(b)
		case listItems:
			p, err := decodePod(b)
			if err != nil {
				return err
			}
			l.Items = append(l.Items, *p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode pod list: %w", err)
	}
	return l, nil
}

// partialSpec holds the parts of a pod spec that are decoded only when
// compactPod will read them.
type partialSpec struct {
	volumes, nodeSelector, affinity, tolerations [][]byte
	tolerates                                    bool // a toleration lets the pod onto a VNode
}

// decodePod decodes what compactPod reads of one pod.
func decodePod(b []byte) (*corev1.Pod, error) {
	metaB, specB, statusB, err := fields(b, podMetadata, podSpec, podStatus)
	if err != nil {
		return nil, err
	}
	p := &corev1.Pod{}
	var ps partialSpec
	if err := decodeSpec(specB, &p.Spec, &ps); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if err := decodeStatus(statusB, &p.Status); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	// What compactPod keeps depends on where the pod is.
	unbound := p.Spec.NodeName == "" && (p.Status.Phase == corev1.PodPending || p.Status.Phase == "")
	if unbound || ps.tolerates {
		for _, t := range ps.tolerations {
			var tol corev1.Toleration
			if err := tol.Unmarshal(t); err != nil {
				return nil, fmt.Errorf("spec.tolerations: %w", err)
			}
			p.Spec.Tolerations = append(p.Spec.Tolerations, tol)
		}
	}
	if unbound {
		if p.Spec.NodeSelector, err = decodeMap(ps.nodeSelector, nil); err != nil {
			return nil, fmt.Errorf("spec.nodeSelector: %w", err)
		}
	}
	if p.Spec.NodeName == "" && ps.affinity != nil {
		p.Spec.Affinity = &corev1.Affinity{}
		for _, a := range ps.affinity {
			if err := p.Spec.Affinity.Unmarshal(a); err != nil {
				return nil, fmt.Errorf("spec.affinity: %w", err)
			}
		}
	}
	if sc := p.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		for _, v := range ps.volumes {
			var vol corev1.Volume
			if err := vol.Unmarshal(v); err != nil {
				return nil, fmt.Errorf("spec.volumes: %w", err)
			}
			p.Spec.Volumes = append(p.Spec.Volumes, vol)
		}
	}
	if err := decodeMeta(metaB, &p.ObjectMeta, unbound || ps.tolerates); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return p, nil
}

func decodeMeta(b []byte, m *metav1.ObjectMeta, labels bool) error {
	var labelB, annotationB [][]byte
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case metaName:
			m.Name = string(v)
		case metaNamespace:
			m.Namespace = string(v)
		case metaLabels:
			labelB = append(labelB, v)
		case metaAnnotations:
			annotationB = append(annotationB, v)
		case metaOwnerReferences:
			var ref metav1.OwnerReference
			if err := ref.Unmarshal(v); err != nil {
				return fmt.Errorf("ownerReferences: %w", err)
			}
			m.OwnerReferences = append(m.OwnerReferences, ref)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if labels {
		if m.Labels, err = decodeMap(labelB, nil); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
	}
	keep := func(k []byte) bool {
		return slices.ContainsFunc(keptAnnotations, func(a string) bool { return string(k) == a })
	}
	if m.Annotations, err = decodeMap(annotationB, keep); err != nil {
		return fmt.Errorf("annotations: %w", err)
	}
	return nil
}

func decodeSpec(b []byte, s *corev1.PodSpec, ps *partialSpec) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == specHostNetwork && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return protowire.ParseError(n)
			}
			s.HostNetwork = x != 0
			return nil
		case typ != protowire.BytesType:
			return nil
		}
		switch num {
		case specNodeName:
			s.NodeName = string(v)
		case specContainers:
			image, err := field(v, containerImage)
			if err != nil {
				return fmt.Errorf("containers: %w", err)
			}
			s.Containers = append(s.Containers, corev1.Container{Image: string(image)})
		case specSecurityContext:
			s.SecurityContext = &corev1.PodSecurityContext{}
			if err := s.SecurityContext.Unmarshal(v); err != nil {
				return fmt.Errorf("securityContext: %w", err)
			}
		case specVolumes:
			ps.volumes = append(ps.volumes, v)
		case specNodeSelector:
			ps.nodeSelector = append(ps.nodeSelector, v)
		case specAffinity:
			ps.affinity = append(ps.affinity, v)
		case specTolerations:
			ps.tolerations = append(ps.tolerations, v)
			key, op, _, err := fields(v, tolerationKey, tolerationOperator, 0)
			if err != nil {
				return fmt.Errorf("tolerations: %w", err)
			}
			// toleratesVNode, on the bytes.
			if string(key) == TaintVKProvider || string(key) == TaintVNode || len(key) == 0 && string(op) == string(corev1.TolerationOpExists) {
				ps.tolerates = true
			}
		}
		return nil
	})
}

func decodeStatus(b []byte, s *corev1.PodStatus) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case statusPhase:
			s.Phase = corev1.PodPhase(v)
		case statusPodIP:
			s.PodIP = string(v)
		case statusPodIPs:
			ip, err := field(v, podIPIP)
			if err != nil {
				return fmt.Errorf("podIPs: %w", err)
			}
			s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: string(ip)})
		case statusContainerStatuses, statusInitContainerStatuses:
			st, err := decodeWaiting(v)
			if err != nil {
				return fmt.Errorf("containerStatuses: %w", err)
			}
			if st == nil {
				return nil // compactPod keeps only waiting containers
			}
			if num == statusContainerStatuses {
				s.ContainerStatuses = append(s.ContainerStatuses, *st)
			} else {
				s.InitContainerStatuses = append(s.InitContainerStatuses, *st)
			}
		}
		return nil
	})
}

// decodeWaiting decodes a container status whose container is waiting
// (name, image, reason, message), nil for one that is not.
func decodeWaiting(b []byte) (*corev1.ContainerStatus, error) {
	name, state, image, err := fields(b, ctrStatusName, ctrStatusState, ctrStatusImage)
	if err != nil || state == nil {
		return nil, err
	}
	var w *corev1.ContainerStateWaiting
	err = eachField(state, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != stateWaiting || typ != protowire.BytesType {
			return nil
		}
		reason, message, _, err := fields(v, waitingReason, waitingMessage, 0)
		w = &corev1.ContainerStateWaiting{Reason: string(reason), Message: string(message)}
		return err
	})
	if err != nil || w == nil {
		return nil, err
	}
	return &corev1.ContainerStatus{Name: string(name), Image: string(image), State: corev1.ContainerState{Waiting: w}}, nil
}

// decodeMap decodes the entries of a map<string, string> field, those
// whose key keep accepts (all for a nil keep); nil when none.
func decodeMap(entries [][]byte, keep func(key []byte) bool) (map[string]string, error) {
	var m map[string]string
	for _, e := range entries {
		k, v, _, err := fields(e, mapKey, mapValue, 0)
		if err != nil {
			return nil, err
		}
		if keep != nil && !keep(k) {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[string(k)] = string(v)
	}
	return m, nil
}

// fields returns the payloads of the length-delimited fields a, b and c
// of a message (the last of each; nil when absent). A number 0 asks for
// nothing: no field has it.
func fields(msg []byte, a, b, c protowire.Number) (va, vb, vc []byte, err error) {
	err = eachField(msg, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case typ != protowire.BytesType:
		case num == a:
			va = v
		case num == b:
			vb = v
		case num == c:
			vc = v
		}
		return nil
	})
	return va, vb, vc, err
}

// field returns the payload of the length-delimited field n of a message
// (the last; nil when absent).
func field(msg []byte, n protowire.Number) ([]byte, error) {
	v, _, _, err := fields(msg, n, 0, 0)
	return v, err
}

// eachField calls fn for each field of a protobuf message: its number, its
// wire type, and its payload (the bytes of a length-delimited field, the
// encoded value of any other).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			m := protowire.ConsumeFieldValue(num, typ, b)
			v, n = b[:max(m, 0)], m
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}
