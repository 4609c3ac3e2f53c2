package vnode

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// imageRef is a parsed container image reference:
// [host[:port]/]path[:tag][@digest].
type imageRef struct {
	// Host is the registry, with its port when the reference has one;
	// "docker.io" when the reference names no registry.
	Host   string
	Path   string
	Tag    string
	Digest string
}

// parseImageRef splits an image reference the way the container runtimes
// do: the first path component is a registry host when it contains a "."
// or a ":" or is "localhost"; otherwise the image is on Docker Hub.
func parseImageRef(s string) (imageRef, error) {
	ref := strings.TrimSpace(s)
	if ref == "" {
		return imageRef{}, fmt.Errorf("image reference is empty")
	}
	var r imageRef
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		r.Digest, ref = ref[i+1:], ref[:i]
		if !strings.Contains(r.Digest, ":") {
			return imageRef{}, fmt.Errorf("image %q: digest %q is not <algorithm>:<hex>", s, r.Digest)
		}
	}
	r.Host = "docker.io"
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		first := ref[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			r.Host, ref = first, ref[i+1:]
		}
	}
	// A tag follows the last ":" after the last "/".
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		r.Tag, ref = ref[i+1:], ref[:i]
		if r.Tag == "" {
			return imageRef{}, fmt.Errorf("image %q: empty tag", s)
		}
	}
	if ref == "" || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//") {
		return imageRef{}, fmt.Errorf("image %q: %q is not a repository path", s, ref)
	}
	r.Path = ref
	return r, nil
}

// Name is the repository's last path component ("metrics-server").
func (r imageRef) Name() string {
	return r.Path[strings.LastIndexByte(r.Path, '/')+1:]
}

// Repository is host and path as written for a pull (without tag or digest).
func (r imageRef) Repository() string {
	return r.Host + "/" + r.Path
}

// semver is a major.minor.patch version read from an image tag.
type semver struct{ Major, Minor, Patch int }

func (v semver) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

func (v semver) less(o semver) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// tagVersionRe reads the release from tags such as v0.6.4, 0.5.2,
// v0.5.2-amd64 or vendor builds such as v0.3.8.5-307cf45-aliyun.
var tagVersionRe = regexp.MustCompile(`^[vV]?(\d+)\.(\d+)(?:\.(\d+))?(?:[.\-+_].*)?$`)

// parseVersion reads a version from a tag or a label value; ok is false
// when it names none ("latest", a commit, empty).
func parseVersion(tag string) (semver, bool) {
	m := tagVersionRe.FindStringSubmatch(tag)
	if m == nil {
		return semver{}, false
	}
	var v semver
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, true
}
