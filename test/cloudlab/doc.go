// Package cloudlab is a local Alibaba Cloud OpenAPI endpoint for tests,
// `make demo` and the benchmarks: one loopback HTTP listener per product
// (ECS, VPC, PrivateZone) speaking the RPC-style wire format as the API
// reference documents it.
//
// It verifies every request like the gateway: Format, Version (per
// product), Action, AccessKeyId, SignatureMethod HMAC-SHA1 and
// SignatureVersion 1.0, Timestamp within 15 minutes, the signature over the
// documented canonicalised query (SignatureDoesNotMatch, HTTP 400, echoing
// the server's string to sign), SecurityToken for STS keys, and
// SignatureNonce (a replay is SignatureNonceUsed). Answers carry the
// documented field names and nesting, a RequestId, and errors as
// {RequestId, HostId, Code, Message, Recommend} with the documented HTTP
// status. Lists page as each API documents (PageNumber/PageSize with
// TotalCount, or NextToken with MaxResults/MaxResult).
//
// Per action it can add latency, hang, throttle (Throttling,
// Throttling.User, ServiceUnavailable, or a flow-control limit), deny
// (Forbidden.RAM, NoPermission, Forbidden), answer a denied list with an
// empty list as ECS DescribeInstances documents, or hide resources as a
// RAM policy limited by resource or condition does. It logs every action
// it served, per server and for the whole process (Served), so that a test
// suite can prove the client only ever read.
//
// The account it serves is a DataSet filled by builders (VPCs, vSwitches,
// route tables, instances, VBRs with their BGP peers and networks,
// PrivateZone zones, resolver endpoints and rules, security groups); Demo
// is the demo's account (matching kubelab.HybridCluster) and Scale the
// benchmark's.
package cloudlab
