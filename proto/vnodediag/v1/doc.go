// Package vnodediagv1 is the generated Go code of the vnodediag.v1 report
// schema and DiagnosticsService (vnodediag.proto beside this file) and of the
// cloud-side agent's ProbeService (probe.proto). Do not edit the .pb.go
// files: change the .proto files and run `make proto`.
package vnodediagv1
