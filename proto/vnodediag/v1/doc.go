// Package vnodediagv1 is the generated Go code of the vnodediag.v1 report
// schema and DiagnosticsService (vnodediag.proto beside this file). Do not
// edit the .pb.go files: change the .proto and run `make proto`.
package vnodediagv1
