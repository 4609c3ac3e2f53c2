// Package release checks what a release ships: the krew plugin manifest
// (deploy/krew/vnodediag.yaml, and the one goreleaser writes) against
// krew's rules, and, after `make release-snapshot` (VNODEDIAG_DIST=dist),
// the archives, their checksums and the generated krew manifest.
package release
