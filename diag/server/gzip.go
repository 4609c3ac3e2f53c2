package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/encoding"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
)

// A caller that sends its request gzipped (grpc-encoding: gzip; in Go,
// grpc.UseCompressor("gzip")) gets its replies gzipped, as gRPC does for
// any compressor the server has. GetLatestReport's reply is the same bytes
// for every caller of a run: gzipping them per call would cost the daemon
// more than sending them plain, so their gzip form is made once, by the
// first such call, and sent as it is to the others. For every other
// message this is gRPC's own gzip.
func init() {
	std := encoding.GetCompressor(grpcgzip.Name)
	if std == nil {
		panic("server: gRPC's gzip compressor is not registered")
	}
	encoding.RegisterCompressor(onceGzip{std: std})
}

// onceGzip is gRPC's gzip compressor, except that a message whose bytes
// are a reply with a gzip form made once (gzipOnce) is sent as that form.
type onceGzip struct{ std encoding.Compressor }

func (c onceGzip) Name() string { return grpcgzip.Name }

func (c onceGzip) Decompress(r io.Reader) (io.Reader, error) { return c.std.Decompress(r) }

func (c onceGzip) Compress(w io.Writer) (io.WriteCloser, error) {
	return &onceGzipWriter{std: c.std, w: w}, nil
}

// onceGzipWriter gets the message as gRPC writes it: a PreEncoded reply
// in one Write of the very bytes the codec handed over (see codec), which
// is how its gzip form is found.
type onceGzipWriter struct {
	std encoding.Compressor
	w   io.Writer
	pre []byte         // the gzip form of the reply written
	z   io.WriteCloser // gRPC's gzip, for any other message
}

func (g *onceGzipWriter) Write(p []byte) (int, error) {
	if g.pre != nil {
		return 0, errors.New("server: a reply gzipped once was written in more than one part")
	}
	if g.z == nil {
		if gz := gzipForm(p); gz != nil {
			g.pre = gz
			return len(p), nil
		}
	}
	z, err := g.stdWriter()
	if err != nil {
		return 0, err
	}
	return z.Write(p)
}

func (g *onceGzipWriter) Close() error {
	if g.pre != nil {
		_, err := g.w.Write(g.pre)
		return err
	}
	z, err := g.stdWriter()
	if err != nil {
		return err
	}
	return z.Close()
}

// stdWriter is gRPC's gzip writer for the message, made at its first use.
func (g *onceGzipWriter) stdWriter() (io.WriteCloser, error) {
	if g.z == nil {
		z, err := g.std.Compress(g.w)
		if err != nil {
			return nil, err
		}
		g.z = z
	}
	return g.z, nil
}

// gzipOnce is a reply's wire form and its gzip form, made at the first
// call that asks for it.
type gzipOnce struct {
	b    []byte
	once sync.Once
	gz   []byte
	err  error
}

func (o *gzipOnce) gzipped() ([]byte, error) {
	o.once.Do(func() {
		var buf bytes.Buffer
		z, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression) // the level is valid
		if _, err := z.Write(o.b); err != nil {
			o.err = err
			return
		}
		if o.err = z.Close(); o.err == nil {
			o.gz = buf.Bytes()
		}
	})
	return o.gz, o.err
}

// gzipReplies holds the replies whose gzip form is made once: each
// Service's newest GetLatestReport reply (a daemon has one Service), a
// few at most. A reply replaced while a call still sends it is gzipped
// for that call as any message is.
var gzipReplies struct {
	mu   sync.Mutex
	list []*gzipOnce
}

// maxGzipReplies bounds gzipReplies: a process that made Services and
// dropped them (tests) does not keep their replies alive beyond it.
const maxGzipReplies = 8

// replaceGzipReply makes next's gzip form one made once, in place of
// prev's (nil: none).
func replaceGzipReply(prev, next *gzipOnce) {
	gzipReplies.mu.Lock()
	defer gzipReplies.mu.Unlock()
	l := gzipReplies.list[:0]
	for _, o := range gzipReplies.list {
		if o != prev {
			l = append(l, o)
		}
	}
	l = append(l, next)
	if len(l) > maxGzipReplies {
		l = append([]*gzipOnce(nil), l[len(l)-maxGzipReplies:]...)
	}
	gzipReplies.list = l
}

// gzipForm returns the gzip form of p when p is the wire form of a reply
// in gzipReplies (the same bytes, not a copy), else nil.
func gzipForm(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	gzipReplies.mu.Lock()
	var found *gzipOnce
	for _, o := range gzipReplies.list {
		if len(o.b) == len(p) && &o.b[0] == &p[0] {
			found = o
			break
		}
	}
	gzipReplies.mu.Unlock()
	if found == nil {
		return nil
	}
	gz, err := found.gzipped()
	if err != nil {
		return nil
	}
	return gz
}
