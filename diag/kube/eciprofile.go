package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The eci-profile ConfigMap (kube-system/eci-profile) is read by the VNode
// components when they create an ECI pod: the vSwitches and security group
// ECI pods get, and the selectors whose matching pods the ECI webhook sends
// to VNodes (adding the VNode toleration and node selector) and annotates.
const (
	ECIProfileNamespace = "kube-system"
	ECIProfileName      = "eci-profile"
)

// ECIProfile is the parsed eci-profile ConfigMap. The cloud checks read its
// VPC, vSwitches and security group; vnode.eci-profile judges its Issues
// and which pods its Selectors match.
type ECIProfile struct {
	VPCID           string
	VSwitchIDs      []string
	SecurityGroupID string
	Selectors       []ECISelector
	// Issues lists what does not parse or is missing, by key.
	Issues []ECIProfileIssue
}

// ECIProfileIssue is one problem of the eci-profile ConfigMap.
type ECIProfileIssue struct {
	// Key is the ConfigMap key ("vSwitchIds", "selectors[1].objectLabels").
	Key     string
	Problem string
	// Broken means the VNode components cannot use the key as written;
	// otherwise it is questionable but works.
	Broken bool
}

// ECISelector is one entry of the profile's selectors: pods that match
// both label selectors (a nil one matches everything) get the effect.
type ECISelector struct {
	Name            string
	NamespaceLabels *metav1.LabelSelector
	ObjectLabels    *metav1.LabelSelector
	// Policy is the scheduling policy named (fair, normalNodePrefer,
	// virtualNodeOnly, normalNodeOnly), empty when none is.
	Policy            string
	EffectAnnotations map[string]string
	EffectLabels      map[string]string

	namespace, object labels.Selector
}

// Matches reports whether the selector picks a pod with podLabels in a
// namespace with nsLabels, as the ECI webhook decides: both selectors must
// match; a selector left out matches everything.
func (s *ECISelector) Matches(nsLabels, podLabels map[string]string) bool {
	if s.namespace != nil && !s.namespace.Matches(labels.Set(nsLabels)) {
		return false
	}
	return s.object == nil || s.object.Matches(labels.Set(podLabels))
}

// MatchesAll reports whether the selector has no label selector at all,
// so that it picks every pod of the cluster.
func (s *ECISelector) MatchesAll() bool {
	return (s.namespace == nil || s.namespace.Empty()) && (s.object == nil || s.object.Empty())
}

var (
	vswitchIDRe = regexp.MustCompile(`^vsw-[a-z0-9]+$`)
	sgIDRe      = regexp.MustCompile(`^sg-[a-z0-9]+$`)
	vpcIDRe     = regexp.MustCompile(`^vpc-[a-z0-9]+$`)
)

// ParseECIProfile parses the data of the eci-profile ConfigMap. It never
// fails: what is wrong is in Issues, and what parsed is kept.
func ParseECIProfile(data map[string]string) *ECIProfile {
	p := &ECIProfile{}
	issue := func(key string, broken bool, format string, args ...any) {
		p.Issues = append(p.Issues, ECIProfileIssue{Key: key, Problem: fmt.Sprintf(format, args...), Broken: broken})
	}
	if v := strings.TrimSpace(data["vpcId"]); v != "" {
		p.VPCID = v
		if !vpcIDRe.MatchString(v) {
			issue("vpcId", true, "%q is not a VPC ID (vpc-...)", v)
		}
	}
	switch v, ok := data["vSwitchIds"]; {
	case !ok || strings.TrimSpace(v) == "":
		issue("vSwitchIds", true, "missing: ECI pods need at least one vSwitch of the VPC (several, in different zones, for zone failover)")
	default:
		seen := map[string]bool{}
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			switch {
			case id == "":
				issue("vSwitchIds", false, "%q has an empty entry", v)
			case !vswitchIDRe.MatchString(id):
				issue("vSwitchIds", true, "%q is not a vSwitch ID (vsw-...)", id)
			case seen[id]:
				issue("vSwitchIds", false, "%s is listed twice", id)
			default:
				seen[id] = true
				p.VSwitchIDs = append(p.VSwitchIDs, id)
			}
		}
	}
	switch v := strings.TrimSpace(data["securityGroupId"]); {
	case v == "":
		issue("securityGroupId", true, "missing: ECI pods need a security group of the VPC")
	case !sgIDRe.MatchString(v):
		issue("securityGroupId", true, "%q is not a security group ID (sg-...)", v)
	default:
		p.SecurityGroupID = v
	}
	if raw := strings.TrimSpace(data["selectors"]); raw != "" {
		p.parseSelectors(raw, issue)
	}
	return p
}

// selectorKeys are the keys of a selector entry the ECI webhook reads.
var selectorKeys = map[string]bool{"name": true, "namespaceLabels": true, "objectLabels": true, "effect": true, "policy": true, "priority": true}

var selectorPolicies = []string{"fair", "normalNodeOnly", "normalNodePrefer", "virtualNodeOnly"}

func (p *ECIProfile) parseSelectors(raw string, issue func(string, bool, string, ...any)) {
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		issue("selectors", true, "not a JSON list of selectors: %s", jsonError(raw, err))
		return
	}
	names := map[string]bool{}
	for i, e := range entries {
		key := fmt.Sprintf("selectors[%d]", i)
		var s ECISelector
		if v, ok := e["name"]; ok {
			if err := json.Unmarshal(v, &s.Name); err != nil {
				issue(key+".name", true, "not a string")
			}
		}
		if s.Name == "" {
			issue(key+".name", true, "missing: every selector needs a unique name")
		} else {
			key = fmt.Sprintf("selectors[%d] (%s)", i, s.Name)
			if names[s.Name] {
				issue(key+".name", true, "%q is used by two selectors", s.Name)
			}
			names[s.Name] = true
		}
		broken := false
		s.NamespaceLabels, s.namespace = labelSelector(e["namespaceLabels"], key+".namespaceLabels", issue, &broken)
		s.ObjectLabels, s.object = labelSelector(e["objectLabels"], key+".objectLabels", issue, &broken)
		if v, ok := e["effect"]; ok {
			var eff struct {
				Annotations map[string]string `json:"annotations"`
				Labels      map[string]string `json:"labels"`
			}
			if err := json.Unmarshal(v, &eff); err != nil {
				issue(key+".effect", true, "want {\"annotations\": {...}, \"labels\": {...}} with string values: %v", err)
				broken = true
			}
			s.EffectAnnotations, s.EffectLabels = eff.Annotations, eff.Labels
		}
		if v, ok := e["policy"]; ok {
			var pol map[string]json.RawMessage
			if err := json.Unmarshal(v, &pol); err != nil || len(pol) != 1 {
				issue(key+".policy", true, "want one of {\"%s\": {}}", strings.Join(selectorPolicies, "\": {}}, {\""))
			} else {
				for k := range pol {
					s.Policy = k
				}
				if !slices.Contains(selectorPolicies, s.Policy) {
					issue(key+".policy", true, "unknown policy %q (want %s)", s.Policy, strings.Join(selectorPolicies, ", "))
				}
			}
		}
		var unknown []string
		for k := range e {
			if !selectorKeys[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			issue(key+"."+k, false, "unknown key: the ECI webhook ignores it (it reads name, namespaceLabels, objectLabels, effect, policy, priority)")
		}
		if !broken {
			p.Selectors = append(p.Selectors, s)
		}
	}
}

// labelSelector parses a metav1.LabelSelector as the ECI webhook does; a
// missing key is nil, which matches everything.
func labelSelector(raw json.RawMessage, key string, issue func(string, bool, string, ...any), broken *bool) (*metav1.LabelSelector, labels.Selector) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var ls metav1.LabelSelector
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ls); err != nil {
		issue(key, true, "not a label selector ({\"matchLabels\": {...}, \"matchExpressions\": [...]}): %v", err)
		*broken = true
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		issue(key, true, "%v", err)
		*broken = true
		return nil, nil
	}
	return &ls, sel
}

// jsonError says where a JSON document is broken, by line.
func jsonError(doc string, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var off int64
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return err.Error()
	}
	line := 1 + strings.Count(doc[:min(int(off), len(doc))], "\n")
	return fmt.Sprintf("line %d: %v", line, err)
}
