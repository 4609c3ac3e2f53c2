package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The MetaServer items an ECI instance documents ("Obtain metadata from a
// container"), each one GET of <base>/<item>.
var metadataItems = []struct {
	path string
	set  func(m *pb.InstanceMetadata, v string)
}{
	{"instance-id", func(m *pb.InstanceMetadata, v string) { m.InstanceId = v }},
	{"hostname", func(m *pb.InstanceMetadata, v string) { m.Hostname = v }},
	{"region-id", func(m *pb.InstanceMetadata, v string) { m.RegionId = v }},
	{"zone-id", func(m *pb.InstanceMetadata, v string) { m.ZoneId = v }},
	{"vpc-id", func(m *pb.InstanceMetadata, v string) { m.VpcId = v }},
	{"vswitch-id", func(m *pb.InstanceMetadata, v string) { m.VswitchId = v }},
	{"private-ipv4", func(m *pb.InstanceMetadata, v string) { m.PrivateIpv4 = v }},
}

// maxMetadataBody bounds what one item may return; the documented items are
// a few dozen bytes.
const maxMetadataBody = 4 << 10

type metadataReader struct{ client *http.Client }

func newMetadataReader() *metadataReader {
	return &metadataReader{client: &http.Client{
		// Never through a proxy from the environment: the MetaServer is
		// link-local to the instance.
		Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirect refused")
		},
	}}
}

// read GETs every item at once, each under timeout. The service is
// available when any item got an HTTP answer, even a 404.
func (m *metadataReader) read(ctx context.Context, base string, timeout time.Duration) *pb.InstanceMetadata {
	out := &pb.InstanceMetadata{Url: base}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, it := range metadataItems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, answered, err := m.get(ctx, base+"/"+it.path, timeout)
			mu.Lock()
			defer mu.Unlock()
			out.Available = out.Available || answered
			if err != nil {
				out.Errors = append(out.Errors, it.path+": "+err.Error())
				return
			}
			it.set(out, v)
		}()
	}
	wg.Wait()
	sort.Strings(out.Errors)
	return out
}

func (m *metadataReader) get(ctx context.Context, url string, timeout time.Duration) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		// A refused redirect still comes with the server's response.
		answered := resp != nil
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return "", answered, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBody))
	if err != nil {
		return "", true, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", true, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), true, nil
}
