package vnode

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/version"
)

// imageRef is a container image reference as the container runtimes read
// it (github.com/distribution/reference): an image without a registry is on
// Docker Hub, and one without a namespace there is under library/.
type imageRef struct {
	// Host is the registry, with its port when the reference has one.
	Host   string
	Path   string
	Tag    string
	Digest string
	// name is the repository as written for a pull: host and path.
	name string
}

// parseImageRef parses s; references the runtimes would refuse (upper-case
// repositories, two tags, a malformed digest) are an error.
func parseImageRef(s string) (imageRef, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(s))
	if err != nil {
		return imageRef{}, fmt.Errorf("image %q: %w", s, err)
	}
	r := imageRef{Host: reference.Domain(named), Path: reference.Path(named), name: named.Name()}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
	}
	return r, nil
}

// Name is the repository's last path component ("metrics-server").
func (r imageRef) Name() string {
	return r.Path[strings.LastIndexByte(r.Path, '/')+1:]
}

// Repository is host and path as written for a pull (without tag or digest).
func (r imageRef) Repository() string { return r.name }

// parseVersion reads a release from a tag or a label value (v0.6.4, 0.5.2,
// v0.5.2-amd64, vendor builds such as v0.3.8.5-307cf45-aliyun); ok is false
// when it names none ("latest", a commit, empty).
func parseVersion(tag string) (*version.Version, bool) {
	v, err := version.ParseGeneric(strings.TrimPrefix(tag, "V"))
	return v, err == nil
}

// release shows a version as its tag would: v0.6.4.
func release(v *version.Version) string { return "v" + v.String() }
