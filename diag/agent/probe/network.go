package probe

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// readNetwork reads the pod's interfaces (addresses, MTU), its routes and
// the resolv.conf of the plan. It only reads; a part that cannot be read is
// an error line, not a failure of the round.
func readNetwork(resolvConf string) *pb.NetworkFacts {
	f := &pb.NetworkFacts{}
	ifs, err := net.Interfaces()
	if err != nil {
		f.Errors = append(f.Errors, "interfaces: "+err.Error())
	}
	for _, ifc := range ifs {
		ni := &pb.NetInterface{Name: ifc.Name, Mtu: int32(ifc.MTU)}
		if ifc.Flags != 0 {
			ni.Flags = strings.Split(ifc.Flags.String(), "|")
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			f.Errors = append(f.Errors, "addresses of "+ifc.Name+": "+err.Error())
		}
		for _, a := range addrs {
			ni.Addresses = append(ni.Addresses, a.String())
		}
		f.Interfaces = append(f.Interfaces, ni)
	}
	routes, err := readRoutes()
	if err != nil {
		f.Errors = append(f.Errors, "routes: "+err.Error())
	}
	f.Routes = routes
	f.ResolvNameservers, f.ResolvSearch, err = readResolvConf(resolvConf)
	if err != nil {
		f.Errors = append(f.Errors, "resolv.conf: "+err.Error())
	}
	return f
}

// readResolvConf returns the nameservers of a resolv.conf as canonical
// host:port (dnsprobe.HostPort, as the plan's servers) and its search
// domains. A nameserver that is no IP address, or a zone-scoped one, is an
// error and is left out.
func readResolvConf(path string) (servers, search []string, err error) {
	if path == "" {
		return nil, nil, nil
	}
	c, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, s := range c.Servers {
		hp, err := dnsprobe.HostPort(net.JoinHostPort(s, c.Port))
		if err != nil {
			errs = append(errs, fmt.Errorf("nameserver: %w", err))
			continue
		}
		servers = append(servers, hp)
	}
	return servers, c.Search, errors.Join(errs...)
}
