package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Security is how the daemon's gRPC listener authenticates itself and its
// callers. The zero value is plaintext without authentication.
//
// Every file is read at start (a missing or malformed one is an error that
// names it) and read again when it changes: each TLS handshake and each
// authenticated call looks at the files' modification time, size and inode,
// so a renewed certificate (cert-manager, a Kubernetes Secret volume's
// symlink swap) or a rotated token applies to the next connection or call
// without a restart. A change that does not parse (a pair caught half
// written) is logged and the previous contents are kept.
type Security struct {
	// CertFile and KeyFile are the server's PEM certificate chain and key;
	// both or neither.
	CertFile, KeyFile string
	// ClientCAFile, with TLS, requires callers to present a client
	// certificate signed by one of these CAs (mTLS). With TokenFile too, a
	// caller may present either a verified client certificate or the token.
	ClientCAFile string
	// TokenFile holds a bearer token callers send as
	// "authorization: Bearer <token>". Surrounding white space is ignored.
	TokenFile string
	Log       *slog.Logger
}

// TLS reports whether the listener uses TLS.
func (s *Security) TLS() bool { return s.CertFile != "" || s.KeyFile != "" }

// healthService is exempt from authentication: load balancers and the
// kubelet's gRPC probe cannot send a token or a client certificate, and
// the answer (SERVING or not) tells a caller nothing about the cluster.
// Reflection is not exempt: it lists the API to whoever may call it.
const healthService = "/grpc.health.v1.Health/"

// ServerOptions returns the transport credentials and the authentication
// interceptors Security asks for, after checking and loading its files.
func (s *Security) ServerOptions() ([]grpc.ServerOption, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, errors.New("a TLS certificate needs both the certificate file and the key file")
	}
	if s.ClientCAFile != "" && !s.TLS() {
		return nil, errors.New("a client CA needs TLS: give the server's certificate and key files too")
	}
	var opts []grpc.ServerOption
	if s.TLS() {
		cfg, err := s.serverTLS(log)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	if s.TokenFile != "" {
		tok, err := newReloader(log, "bearer token", tokenDigest, s.TokenFile)
		if err != nil {
			return nil, err
		}
		a := &tokenAuth{token: tok, certAlone: s.ClientCAFile != ""}
		opts = append(opts, grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream))
	}
	return opts, nil
}

// serverTLS builds the listener's TLS configuration: TLS 1.2 or later,
// and for each handshake the certificate and client CAs as the files
// hold them now.
func (s *Security) serverTLS(log *slog.Logger) (*tls.Config, error) {
	pair, err := newReloader(log, "TLS certificate", parseKeyPair, s.CertFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	var cas *reloader[*x509.CertPool]
	mode := tls.NoClientCert
	if s.ClientCAFile != "" {
		if cas, err = newReloader(log, "client CA", parseCAs, s.ClientCAFile); err != nil {
			return nil, err
		}
		mode = tls.RequireAndVerifyClientCert
		if s.TokenFile != "" {
			mode = tls.VerifyClientCertIfGiven
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2"},
				Certificates: []tls.Certificate{*pair.get()},
				ClientAuth:   mode,
			}
			if cas != nil {
				c.ClientCAs = cas.get()
			}
			return c, nil
		},
	}, nil
}

func parseKeyPair(b [][]byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(b[0], b[1])
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func parseCAs(b [][]byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b[0]) {
		return nil, errors.New("no PEM certificate in it")
	}
	return p, nil
}

// tokenDigest keeps the SHA-256 of the token, not the token: comparing
// digests of equal length keeps the comparison constant-time whatever the
// caller sends.
func tokenDigest(b [][]byte) ([sha256.Size]byte, error) {
	t := bytes.TrimSpace(b[0])
	if len(t) == 0 {
		return [sha256.Size]byte{}, errors.New("the token file is empty")
	}
	if bytes.ContainsAny(t, " \t\r\n") {
		return [sha256.Size]byte{}, errors.New("the token contains white space")
	}
	return sha256.Sum256(t), nil
}

// tokenAuth checks the bearer token of every call but health checks.
type tokenAuth struct {
	token *reloader[[sha256.Size]byte]
	// certAlone: a verified client certificate is enough (mTLS is
	// configured beside the token).
	certAlone bool
}

func (a *tokenAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (a *tokenAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

func (a *tokenAuth) authorize(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthService) {
		return nil
	}
	if a.certAlone {
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				return nil
			}
		}
	}
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return status.Error(codes.Unauthenticated, "no bearer token: send the header \"authorization: Bearer <token>\"")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return status.Error(codes.Unauthenticated, "the authorization header is not \"Bearer <token>\"")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := a.token.get()
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return nil
}

// fileSig identifies a version of a file without reading it.
type fileSig struct {
	mod  time.Time
	size int64
	ino  uint64
}

func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	s := fileSig{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

// reloader holds what parse made of some files, and parses them again
// when one of them changes.
type reloader[T any] struct {
	log   *slog.Logger
	what  string
	parse func([][]byte) (T, error)
	paths []string

	mu  sync.Mutex
	sig []fileSig
	val T
}

func newReloader[T any](log *slog.Logger, what string, parse func([][]byte) (T, error), paths ...string) (*reloader[T], error) {
	r := &reloader[T]{log: log, what: what, parse: parse, paths: paths}
	sig, val, err := r.load()
	if err != nil {
		return nil, err
	}
	r.sig, r.val = sig, val
	return r, nil
}

// load reads and parses the files; errors name the files, never quote them.
func (r *reloader[T]) load() ([]fileSig, T, error) {
	var zero T
	sig := make([]fileSig, len(r.paths))
	data := make([][]byte, len(r.paths))
	for i, p := range r.paths {
		s, err := statSig(p)
		if err != nil {
			return nil, zero, fmt.Errorf("%s: %w", r.what, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, zero, fmt.Errorf("%s: %w", r.what, err)
		}
		sig[i], data[i] = s, b
	}
	v, err := r.parse(data)
	if err != nil {
		return nil, zero, fmt.Errorf("%s %s: %w", r.what, strings.Join(r.paths, ", "), err)
	}
	return sig, v, nil
}

// get returns the current value, reloading it first if a file changed.
func (r *reloader[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := make([]fileSig, len(r.paths))
	changed := false
	for i, p := range r.paths {
		cur[i], _ = statSig(p) // a missing file is the zero signature: a change
		changed = changed || cur[i] != r.sig[i]
	}
	if !changed {
		return r.val
	}
	sig, val, err := r.load()
	if err != nil {
		// Kept until the files change again, so logged once per version.
		r.log.Warn("keeping the previous "+r.what+": the changed files do not load", "error", err)
		r.sig = cur
		return r.val
	}
	r.log.Info("reloaded the "+r.what, "files", r.paths)
	r.sig, r.val = sig, val
	return r.val
}

// ClientSecurity is how a client of the daemon (the CLI's --server)
// secures its connection.
type ClientSecurity struct {
	// Plaintext dials without TLS; the other TLS fields must be empty.
	Plaintext bool
	// CAFile verifies the daemon's certificate (default: the system's roots).
	CAFile string
	// CertFile and KeyFile are a client certificate for mTLS.
	CertFile, KeyFile string
	// ServerName is the name the daemon's certificate must carry (default:
	// the host of the address dialled).
	ServerName string
	// TokenFile holds the bearer token sent with every call.
	TokenFile string
}

// DialOptions returns the credentials of c, after reading its files.
func (c *ClientSecurity) DialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if c.Plaintext {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			b, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("server CA: %w", err)
			}
			if cfg.RootCAs, err = parseCAs([][]byte{b}); err != nil {
				return nil, fmt.Errorf("server CA %s: %w", c.CAFile, err)
			}
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			return nil, errors.New("a client certificate needs both the certificate file and the key file")
		}
		if c.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate %s, %s: %w", c.CertFile, c.KeyFile, err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("bearer token: %w", err)
		}
		if _, err := tokenDigest([][]byte{b}); err != nil {
			return nil, fmt.Errorf("bearer token %s: %w", c.TokenFile, err)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: string(bytes.TrimSpace(b)), secure: !c.Plaintext}))
	}
	return opts, nil
}

// bearer sends the token with every call. Whether plaintext may carry it
// (only to loopback) is the caller's decision, made before dialling.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
