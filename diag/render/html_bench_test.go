package render

import (
	"fmt"
	"testing"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// bigReport is a report at the runner's caps: every check of the demo
// report with 200 results, each with evidence and a fix.
func bigReport() *pb.Report {
	rep := demoReport()
	var results []*pb.Result
	for _, r := range rep.Results {
		for i := range 200 {
			c := &pb.Result{CheckId: r.CheckId, Status: r.Status, Summary: fmt.Sprintf("%s (object %d)", r.Summary, i),
				Objects: []*pb.Object{{Kind: "Node", Name: fmt.Sprintf("node-%d", i)}}, Remediation: r.Remediation,
				Evidence: []*pb.Evidence{{Label: fmt.Sprintf("node-%d", i), Expected: "172.21.0.0/24", Observed: "100.100.8.0/24"}}}
			results = append(results, c)
		}
	}
	rep.Results = results
	return rep
}

// countingWriter counts what a renderer writes.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkRender renders the same large report as a table (the baseline)
// and as HTML: go test -run '^$' -bench Render -benchmem ./diag/render
func BenchmarkRender(b *testing.B) {
	rep := bigReport()
	for _, format := range []string{"table", "html"} {
		b.Run(format, func(b *testing.B) {
			var w countingWriter
			for b.Loop() {
				w.n = 0
				if err := Write(&w, format, rep, Options{Verbose: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n), "bytes/report")
			b.ReportMetric(float64(len(rep.Results)), "results")
		})
	}
}
