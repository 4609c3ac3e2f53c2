package release

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func repoFile(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

// plugin is krew's index.Plugin (sigs.k8s.io/krew/pkg/index), the fields
// a manifest may have; decoding is strict, so anything else is an error.
type plugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string     `json:"version"`
		ShortDescription string     `json:"shortDescription"`
		Description      string     `json:"description"`
		Caveats          string     `json:"caveats"`
		Homepage         string     `json:"homepage"`
		Platforms        []platform `json:"platforms"`
	} `json:"spec"`
}

type platform struct {
	URI      string `json:"uri"`
	Sha256   string `json:"sha256"`
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Files []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files,omitempty"`
	Bin string `json:"bin"`
}

var (
	semver = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	sha    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// The platforms a release must cover (goreleaser's builds).
	wantPlatforms = []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}
)

// validate applies krew's manifest rules (its internal/index/validation):
// kind and API version, a name that is the file's, a semantic version, a
// short description, and per platform a selector, an https URI, a SHA-256
// and a bin; no two platforms for the same os/arch.
func validate(file string) (*plugin, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := &plugin{}
	if err := yaml.UnmarshalStrict(b, p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" {
		add("apiVersion %q kind %q", p.APIVersion, p.Kind)
	}
	if p.Metadata.Name != "vnodediag" || strings.TrimSuffix(filepath.Base(file), ".yaml") != p.Metadata.Name {
		add("name %q: must be vnodediag and the file's name", p.Metadata.Name)
	}
	if !semver.MatchString(p.Spec.Version) {
		add("version %q is not a semantic version with a v", p.Spec.Version)
	}
	if p.Spec.ShortDescription == "" || len(p.Spec.ShortDescription) > 60 {
		add("shortDescription %q: wanted, at most 60 characters", p.Spec.ShortDescription)
	}
	seen := map[string]bool{}
	for i, pl := range p.Spec.Platforms {
		key := pl.Selector.MatchLabels["os"] + "/" + pl.Selector.MatchLabels["arch"]
		if len(pl.Selector.MatchLabels) != 2 || seen[key] {
			add("platforms[%d]: selector %v (one os and arch, each once)", i, pl.Selector.MatchLabels)
		}
		seen[key] = true
		if !strings.HasPrefix(pl.URI, "https://") {
			add("platforms[%d].uri %q is not https", i, pl.URI)
		}
		if !sha.MatchString(pl.Sha256) {
			add("platforms[%d].sha256 %q is not a lowercase SHA-256", i, pl.Sha256)
		}
		if pl.Bin != "vnodediag" {
			add("platforms[%d].bin %q, want vnodediag (krew links it as kubectl-vnodediag)", i, pl.Bin)
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantPlatforms) {
		add("platforms %v, want %v", keys, wantPlatforms)
	}
	return p, errors.Join(errs...)
}

// TestKrewManifest: the committed manifest keeps krew's rules, and its
// URIs are the archives goreleaser names (.goreleaser.yaml).
func TestKrewManifest(t *testing.T) {
	p, err := validate(repoFile("deploy/krew/vnodediag.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimPrefix(p.Spec.Version, "v")
	for _, pl := range p.Spec.Platforms {
		want := fmt.Sprintf("https://github.com/vnodediag/vnodediag/releases/download/%s/vnodediag_%s_%s_%s.tar.gz",
			p.Spec.Version, v, pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"])
		if pl.URI != want {
			t.Errorf("uri %q, want %q", pl.URI, want)
		}
	}
	cfg, err := os.ReadFile(repoFile(".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `name_template: "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}"`) {
		t.Error(".goreleaser.yaml names its archives otherwise than the krew manifest's URIs")
	}
}

// TestReleaseSnapshot checks the dist/ of `make release-snapshot`: an
// archive per platform holding the static binary and README.md, each in
// checksums.txt with its real SHA-256, and a krew manifest that keeps
// krew's rules and names those archives and checksums.
func TestReleaseSnapshot(t *testing.T) {
	dist := os.Getenv("VNODEDIAG_DIST")
	if dist == "" {
		t.Skip("VNODEDIAG_DIST is not set: run `make release-snapshot`, then this test with VNODEDIAG_DIST=dist")
	}
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			t.Fatalf("checksums.txt line %q", sc.Text())
		}
		sums[fields[1]] = fields[0]
	}
	p, err := validate(filepath.Join(dist, "krew", "vnodediag.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range p.Spec.Platforms {
		name := path.Base(pl.URI)
		want, ok := sums[name]
		if !ok {
			t.Errorf("krew names %s, which checksums.txt does not list", name)
			continue
		}
		if pl.Sha256 != want {
			t.Errorf("%s: krew sha256 %s, checksums.txt %s", name, pl.Sha256, want)
		}
		got, files := readArchive(t, filepath.Join(dist, name))
		if got != want {
			t.Errorf("%s: sha256 %s, checksums.txt %s", name, got, want)
		}
		slices.Sort(files)
		if !slices.Equal(files, []string{"README.md", "vnodediag"}) {
			t.Errorf("%s holds %v", name, files)
		}
	}
	if len(p.Spec.Platforms) != len(wantPlatforms) {
		t.Errorf("krew platforms: %d", len(p.Spec.Platforms))
	}
}

func readArchive(t *testing.T, file string) (sum string, files []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, hd.Name)
	}
	return hex.EncodeToString(h[:]), files
}
