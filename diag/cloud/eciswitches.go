package cloud

import (
	"fmt"
	"net/netip"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Free-address thresholds of an ECI vSwitch: below either is a WARN, none
// left a FAIL (new ECI pods then fail to get an IP).
const (
	eciMinFree        = 16
	eciMinFreePercent = 10
)

// evalECIVSwitches is cloud.eci-vswitches: each vSwitch ECI uses (the
// eci-profile's vSwitchIds, or cloud.eciVSwitchIds) exists, is in the
// cluster's VPC, and has free addresses. One result per vSwitch, with its
// zone, CIDR and free count.
func evalECIVSwitches(s *Snapshot) []*pb.Result {
	if len(s.ECI.VSwitches) == 0 {
		if s.ECI.Err != nil {
			return []*pb.Result{eciUnread(s.ECI.Err)}
		}
		return []*pb.Result{diag.Skip("no ECI vSwitch: no vSwitchIds in ConfigMap kube-system/eci-profile (or no such ConfigMap) and no cloud.eciVSwitchIds")}
	}
	for _, p := range []Part{PartVPC, PartVSwitches} {
		if e := s.Errors[p]; e != nil && (p != PartVPC || s.VPCID == "") {
			return []*pb.Result{partResult(e)}
		}
	}
	var out []*pb.Result
	for _, id := range s.ECI.VSwitches {
		obj := []*pb.Object{diag.Obj("VSwitch", "", id)}
		v := s.VSwitches[id]
		if v == nil {
			r := eciVSwitchElsewhere(s, id)
			r.Objects = obj
			out = append(out, r)
			continue
		}
		total := usableAddresses(v.CIDR)
		where := fmt.Sprintf("zone %s, CIDR %s", v.Zone, v.CIDR)
		free := fmt.Sprintf("%d of %d free", v.AvailableIPs, total)
		var r *pb.Result
		switch {
		case v.AvailableIPs <= 0:
			r = diag.Fail("ECI vSwitch %s (%s) has no free IP address: new ECI pods fail to start", id, where)
		case v.AvailableIPs < eciMinFree || (total > 0 && v.AvailableIPs*100 < total*eciMinFreePercent):
			r = diag.Warn("ECI vSwitch %s (%s) is nearly full: %s", id, where, free)
		default:
			r = diag.Pass("ECI vSwitch %s (%s): %s", id, where, free)
		}
		r.Objects = obj
		r.Evidence = []*pb.Evidence{diag.Ev("free IP addresses", fmt.Sprintf("at least %d and %d%% of %d", eciMinFree, eciMinFreePercent, total), fmt.Sprint(v.AvailableIPs))}
		if r.Status != pb.Status_PASS {
			r.Remediation = fmt.Sprintf("Give ECI more addresses: create a vSwitch in another zone of VPC %s (VPC console > vSwitches > Create vSwitch; "+
				"aliyun vpc CreateVSwitch --RegionId %s --VpcId %s --ZoneId <zone> --CidrBlock <free CIDR>) and add it to vSwitchIds in ConfigMap kube-system/eci-profile "+
				"(kubectl -n kube-system edit configmap eci-profile); or release the addresses other resources hold in %s.", s.VPCID, s.Region, s.VPCID, id)
		}
		out = append(out, r)
	}
	return out
}

// eciVSwitchElsewhere is the FAIL of an ECI vSwitch that is not in the
// cluster's VPC: in another VPC, or nowhere.
func eciVSwitchElsewhere(s *Snapshot, id string) *pb.Result {
	fix := fmt.Sprintf("Set vSwitchIds in ConfigMap kube-system/eci-profile to vSwitches of VPC %s (VPC console > vSwitches, or aliyun vpc DescribeVSwitches --RegionId %s --VpcId %s).",
		s.VPCID, s.Region, s.VPCID)
	if e := s.ResourceErrs[id]; e != nil {
		r := partResult(e)
		r.Summary = fmt.Sprintf("ECI vSwitch %s is not in VPC %s, and looking it up elsewhere failed: %v", id, s.VPCID, e.Err)
		return r
	}
	if o := s.OtherVSwitches[id]; o != nil {
		r := diag.Fail("ECI vSwitch %s is in VPC %s, not the cluster's VPC %s: ECI pods there cannot reach the nodes' pod routes", id, o.VPCID, s.VPCID)
		r.Evidence = []*pb.Evidence{diag.Ev("VPC of "+id, s.VPCID, o.VPCID+" (zone "+o.Zone+", CIDR "+o.CIDR+")")}
		r.Remediation = fix
		return r
	}
	r := diag.Fail("ECI vSwitch %s does not exist in %s", id, s.Region)
	r.Evidence = []*pb.Evidence{diag.Ev("vSwitch "+id, "in VPC "+s.VPCID, "not found")}
	r.Remediation = fix
	return r
}

// usableAddresses is what a vSwitch CIDR can hand out: Alibaba Cloud
// reserves the first and the last three addresses of each vSwitch.
func usableAddresses(cidr string) int64 {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return 0
	}
	return int64(1)<<(32-p.Bits()) - 4
}
