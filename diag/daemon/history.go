package daemon

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// kept is a run of the history: its header (the report without its
// results, what ListHistory sends unless asked for results) and the whole
// report, marshalled and compressed. A report's results repeat from run to
// run and within a run (the same evidence for every VNode): at 150,000
// pods one holds 2.75 MB of Go objects and packs into 24 KB, so 20 kept
// runs cost half a megabyte instead of 55.
type kept struct {
	header *pb.Report
	packed []byte
}

func keep(rep *pb.Report) (kept, error) {
	raw, err := proto.Marshal(rep)
	if err != nil {
		return kept{}, fmt.Errorf("marshal report %s: %w", rep.GetRunId(), err)
	}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // the level is valid
	if _, err := w.Write(raw); err != nil {
		return kept{}, err
	}
	if err := w.Close(); err != nil {
		return kept{}, err
	}
	return kept{header: header(rep), packed: bytes.Clone(b.Bytes())}, nil
}

// report unpacks the whole report, a copy of its own.
func (k kept) report() (*pb.Report, error) {
	r, err := gzip.NewReader(bytes.NewReader(k.packed))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	rep := &pb.Report{}
	if err := proto.Unmarshal(raw, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// header is rep without its results.
func header(r *pb.Report) *pb.Report {
	return &pb.Report{RunId: r.GetRunId(), StartTime: r.GetStartTime(), EndTime: r.GetEndTime(), Cluster: r.GetCluster(),
		Summary: r.GetSummary(), Sources: r.GetSources(), Version: r.GetVersion()}
}
