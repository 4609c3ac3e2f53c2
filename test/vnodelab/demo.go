package vnodelab

import (
	"context"
	"time"

	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/test/dnslab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// StartDemo adds a lab VNode to the demo's API server, with the agent of
// deploy/agent on it run by exec (BinaryExec(bin/vnodediag) runs
// `vnodediag agent`), and returns the agent
// section the demo's vnodediag should use and a stop function. Its
// deliberate faults:
//
//   - the VPC DNS (dnsmasq) has no forwarding rule for corp.example, so
//     dns.onprem-from-cloud FAILs for the VPC DNS path while the pod's
//     resolv.conf path resolves;
//   - an on-prem target is black-holed (path.cloud-to-onprem FAIL, timed
//     out) and another refuses (WARN: the path works, the service does not).
//
// The demo's API server runs without kubelet flags, so the VNode serves a
// self-signed certificate and the API server does not verify it (the tests
// use the full PKI). Needs root, unbound and dnsmasq.
func StartDemo(kube *kubelab.Lab, exec Exec) (*agent.Config, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{
		Exec: exec, Kube: kube, NodeName: "vnode-lab-cn-shanghai-l",
		DNS: dnslab.Options{NoCloudForward: true}, Interval: 30 * time.Second,
	})
	if err != nil {
		return nil, nil, err
	}
	return l.AgentConfig(), l.Close, nil
}
