package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// files writes a certificate and key into dir under prefix.
func files(t *testing.T, dir, prefix string, cert, key []byte) (string, string) {
	return diagtest.WriteFile(t, filepath.Join(dir, prefix+".crt"), cert), diagtest.WriteFile(t, filepath.Join(dir, prefix+".key"), key)
}

// secureServe serves testChecks with sec on a loopback port and returns
// the address.
func secureServe(t *testing.T, sec *Security) string {
	t.Helper()
	opts, err := sec.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(&Service{Checks: testChecks}, opts...)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return lis.Addr().String()
}

// call dials addr with cs and calls ListChecks, reflection and health;
// it returns their errors.
func call(t *testing.T, addr string, cs ClientSecurity) (list, refl, health error) {
	t.Helper()
	opts, err := cs.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, list = pb.NewDiagnosticsServiceClient(conn).ListChecks(ctx, &pb.ListChecksRequest{})
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err == nil {
		// A Send to a stream the server has already ended returns io.EOF;
		// the stream's status is then what Recv returns.
		if err = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err == nil || err == io.EOF {
			_, err = rs.Recv()
		}
		_ = rs.CloseSend()
	}
	refl = err
	_, health = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return list, refl, health
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: %v, want %s", what, err, want)
	}
}

// TLS: the right CA connects; a client trusting another CA, or a server
// whose certificate expired, fails the handshake (UNAVAILABLE).
func TestTLSServerCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, other := diagtest.NewCA(t, "ca"), diagtest.NewCA(t, "other")
	caFile := diagtest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	otherFile := diagtest.WriteFile(t, filepath.Join(dir, "other.pem"), other.PEM)
	cert, key := ca.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile})

	l, r, h := call(t, addr, ClientSecurity{CAFile: caFile})
	wantCode(t, "right CA: ListChecks", l, codes.OK)
	wantCode(t, "right CA: reflection", r, codes.OK)
	wantCode(t, "right CA: health", h, codes.OK)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, ServerName: "vnodediag.test"})
	wantCode(t, "server name", l, codes.OK)
	l, _, h = call(t, addr, ClientSecurity{CAFile: otherFile})
	wantCode(t, "wrong CA: ListChecks", l, codes.Unavailable)
	wantCode(t, "wrong CA: health", h, codes.Unavailable)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, ServerName: "elsewhere.test"})
	wantCode(t, "wrong server name", l, codes.Unavailable)
	l, _, _ = call(t, addr, ClientSecurity{Plaintext: true})
	wantCode(t, "plaintext to a TLS daemon", l, codes.Unavailable)

	cert, key = ca.Expired(t, false)
	certFile, keyFile = files(t, t.TempDir(), "expired", cert, key)
	addr = secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile})
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile})
	wantCode(t, "expired server certificate", l, codes.Unavailable)
	if !strings.Contains(status.Convert(l).Message(), "expired") {
		t.Errorf("expired server certificate: %q does not say expired", status.Convert(l).Message())
	}
}

// mTLS: a client without a certificate, with one from another CA or with
// an expired one is refused in the handshake (UNAVAILABLE); health is
// behind the handshake too.
func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := diagtest.NewCA(t, "ca"), diagtest.NewCA(t, "other")
	caFile := diagtest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	cert, key := ca.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile})

	cc, ck := ca.Valid(t, true)
	goodCert, goodKey := files(t, dir, "client", cc, ck)
	oc, ok := other.Valid(t, true)
	otherCert, otherKey := files(t, dir, "client-other", oc, ok)
	ec, ek := ca.Expired(t, true)
	expCert, expKey := files(t, dir, "client-expired", ec, ek)

	l, r, h := call(t, addr, ClientSecurity{CAFile: caFile, CertFile: goodCert, KeyFile: goodKey})
	wantCode(t, "client certificate: ListChecks", l, codes.OK)
	wantCode(t, "client certificate: reflection", r, codes.OK)
	wantCode(t, "client certificate: health", h, codes.OK)
	for _, c := range []struct {
		name string
		cs   ClientSecurity
	}{
		{"no client certificate", ClientSecurity{CAFile: caFile}},
		{"client certificate of another CA", ClientSecurity{CAFile: caFile, CertFile: otherCert, KeyFile: otherKey}},
		{"expired client certificate", ClientSecurity{CAFile: caFile, CertFile: expCert, KeyFile: expKey}},
	} {
		l, _, h := call(t, addr, c.cs)
		wantCode(t, c.name+": ListChecks", l, codes.Unavailable)
		wantCode(t, c.name+": health", h, codes.Unavailable)
	}
}

// The token: missing or wrong is UNAUTHENTICATED, for reflection too;
// health needs none; a rewritten token file applies to the next call.
func TestToken(t *testing.T) {
	dir := t.TempDir()
	ca := diagtest.NewCA(t, "ca")
	caFile := diagtest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	cert, key := ca.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	tokFile := diagtest.WriteFile(t, filepath.Join(dir, "token"), []byte("s3cret-one\n"))
	good := diagtest.WriteFile(t, filepath.Join(dir, "good"), []byte("s3cret-one"))
	wrong := diagtest.WriteFile(t, filepath.Join(dir, "wrong"), []byte("s3cret-two"))
	var logs diagtest.SyncBuffer
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile, TokenFile: tokFile,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	l, r, h := call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: good})
	wantCode(t, "token: ListChecks", l, codes.OK)
	wantCode(t, "token: reflection", r, codes.OK)
	wantCode(t, "token: health", h, codes.OK)
	l, r, h = call(t, addr, ClientSecurity{CAFile: caFile})
	wantCode(t, "no token: ListChecks", l, codes.Unauthenticated)
	wantCode(t, "no token: reflection", r, codes.Unauthenticated)
	wantCode(t, "no token: health", h, codes.OK)
	l, r, _ = call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: wrong})
	wantCode(t, "wrong token: ListChecks", l, codes.Unauthenticated)
	wantCode(t, "wrong token: reflection", r, codes.Unauthenticated)
	if msg := status.Convert(l).Message(); msg != "invalid bearer token" {
		t.Errorf("wrong token: message %q", msg)
	}

	diagtest.WriteFile(t, tokFile, []byte("s3cret-two"))
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: good})
	wantCode(t, "old token after rotation", l, codes.Unauthenticated)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: wrong})
	wantCode(t, "new token after rotation", l, codes.OK)

	// An emptied token file keeps the last good token.
	diagtest.WriteFile(t, tokFile, nil)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: wrong})
	wantCode(t, "token after the file was emptied", l, codes.OK)
	if !strings.Contains(logs.String(), "keeping the previous bearer token") {
		t.Errorf("no warning about the empty token file:\n%s", logs.String())
	}
	for _, secret := range []string{"s3cret-one", "s3cret-two"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token reached the log:\n%s", logs.String())
		}
	}
}

// mTLS and a token together: either a verified client certificate or the
// token lets a call in; neither is UNAUTHENTICATED.
func TestMTLSOrToken(t *testing.T) {
	dir := t.TempDir()
	ca := diagtest.NewCA(t, "ca")
	caFile := diagtest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	cert, key := ca.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	cc, ck := ca.Valid(t, true)
	clientCert, clientKey := files(t, dir, "client", cc, ck)
	tokFile := diagtest.WriteFile(t, filepath.Join(dir, "token"), []byte("s3cret"))
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, TokenFile: tokFile})

	l, _, _ := call(t, addr, ClientSecurity{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey})
	wantCode(t, "client certificate alone", l, codes.OK)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: caFile, TokenFile: tokFile})
	wantCode(t, "token alone", l, codes.OK)
	l, _, h := call(t, addr, ClientSecurity{CAFile: caFile})
	wantCode(t, "neither", l, codes.Unauthenticated)
	wantCode(t, "neither: health", h, codes.OK)
}

// A renewed certificate is served to the next connection without a
// restart; a half-written pair keeps the previous one.
func TestCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := diagtest.NewCA(t, "ca1"), diagtest.NewCA(t, "ca2")
	ca1File := diagtest.WriteFile(t, filepath.Join(dir, "ca1.pem"), ca1.PEM)
	ca2File := diagtest.WriteFile(t, filepath.Join(dir, "ca2.pem"), ca2.PEM)
	cert, key := ca1.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	var logs diagtest.SyncBuffer
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile, Log: slog.New(slog.NewTextHandler(&logs, nil))})

	l, _, _ := call(t, addr, ClientSecurity{CAFile: ca1File})
	wantCode(t, "before rotation, CA 1", l, codes.OK)

	// The certificate alone is new: it does not match the old key.
	cert2, key2 := ca2.Valid(t, false)
	diagtest.WriteFile(t, certFile, cert2)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: ca1File})
	wantCode(t, "half-written pair, CA 1", l, codes.OK)
	if !strings.Contains(logs.String(), "keeping the previous TLS certificate") {
		t.Errorf("no warning about the half-written pair:\n%s", logs.String())
	}

	diagtest.WriteFile(t, keyFile, key2)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: ca2File})
	wantCode(t, "after rotation, CA 2", l, codes.OK)
	l, _, _ = call(t, addr, ClientSecurity{CAFile: ca1File})
	wantCode(t, "after rotation, CA 1", l, codes.Unavailable)
}

// Bad files are errors at start that name them; a pair needs both halves.
func TestSecurityErrors(t *testing.T) {
	dir := t.TempDir()
	ca := diagtest.NewCA(t, "ca")
	cert, key := ca.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	garbage := diagtest.WriteFile(t, filepath.Join(dir, "garbage"), []byte("not pem"))
	empty := diagtest.WriteFile(t, filepath.Join(dir, "empty"), []byte(" \n"))
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		sec  Security
		want string
	}{
		{Security{CertFile: certFile}, "a TLS certificate needs both the certificate file and the key file"},
		{Security{ClientCAFile: certFile}, "a client CA needs TLS: give the server's certificate and key files too"},
		{Security{CertFile: certFile, KeyFile: garbage}, "TLS certificate " + certFile + ", " + garbage + ": tls: failed to find any PEM data in key input"},
		{Security{CertFile: missing, KeyFile: keyFile}, "TLS certificate: stat " + missing + ": no such file or directory"},
		{Security{CertFile: certFile, KeyFile: keyFile, ClientCAFile: garbage}, "client CA " + garbage + ": no PEM certificate in it"},
		{Security{TokenFile: empty}, "bearer token " + empty + ": the token file is empty"},
	} {
		_, err := c.sec.ServerOptions()
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.sec, err, c.want)
		}
	}
}

// A rewritten client CA file applies to the next connection without a
// restart: clients of the new CA are let in, those of the old one are
// refused in the handshake; a file that no longer parses keeps the
// previous CA.
func TestClientCARotation(t *testing.T) {
	dir := t.TempDir()
	server, ca1, ca2 := diagtest.NewCA(t, "server"), diagtest.NewCA(t, "clients-1"), diagtest.NewCA(t, "clients-2")
	serverCA := diagtest.WriteFile(t, filepath.Join(dir, "server-ca.pem"), server.PEM)
	clientCA := diagtest.WriteFile(t, filepath.Join(dir, "client-ca.pem"), ca1.PEM)
	cert, key := server.Valid(t, false)
	certFile, keyFile := files(t, dir, "server", cert, key)
	var logs diagtest.SyncBuffer
	addr := secureServe(t, &Security{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCA, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	c1, k1 := ca1.Valid(t, true)
	cert1, key1 := files(t, dir, "client-1", c1, k1)
	c2, k2 := ca2.Valid(t, true)
	cert2, key2 := files(t, dir, "client-2", c2, k2)
	by1 := ClientSecurity{CAFile: serverCA, CertFile: cert1, KeyFile: key1}
	by2 := ClientSecurity{CAFile: serverCA, CertFile: cert2, KeyFile: key2}

	l, _, _ := call(t, addr, by1)
	wantCode(t, "CA 1 in force, client of CA 1", l, codes.OK)
	l, _, _ = call(t, addr, by2)
	wantCode(t, "CA 1 in force, client of CA 2", l, codes.Unavailable)

	diagtest.WriteFile(t, clientCA, ca2.PEM)
	l, _, _ = call(t, addr, by2)
	wantCode(t, "CA 2 in force, client of CA 2", l, codes.OK)
	l, _, _ = call(t, addr, by1)
	wantCode(t, "CA 2 in force, client of CA 1", l, codes.Unavailable)

	diagtest.WriteFile(t, clientCA, []byte("half a PEM"))
	l, _, _ = call(t, addr, by2)
	wantCode(t, "unparsable file, CA 2 kept, client of CA 2", l, codes.OK)
	if !strings.Contains(logs.String(), "keeping the previous client CA") {
		t.Errorf("no warning about the unparsable client CA file:\n%s", logs.String())
	}
}
