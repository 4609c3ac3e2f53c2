// Package proto holds the report schema and gRPC API (vnodediag/v1) and the
// test that keeps the committed generated code in step with the .proto file.
// Regenerate with `make proto` (protoc from Debian's protobuf-compiler, the
// protoc-gen-go and protoc-gen-go-grpc versions pinned in the Makefile).
package proto
