package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/hoso-ledger/hoso/eventstore"
	"github.com/nats-io/nats.go"
)

// testPKI is a CA made for one test and a server certificate it signed for
// 127.0.0.1 and localhost, as PEM files.
type testPKI struct {
	CAFile, CertFile, KeyFile string
	Pool                      *x509.CertPool
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hoso test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		Pool: x509.NewCertPool(), ca: ca, caKey: caKey,
	}
	p.Pool.AddCert(ca)
	if err := os.WriteFile(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.issue(t, 2)
	return p
}

// issue writes a new server certificate with this serial number and its
// key into CertFile and KeyFile.
func (p testPKI) issue(t *testing.T, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "hoso"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client is an HTTPS client that trusts the test CA.
func (p testPKI) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool}}}
}

// TestServeTLS: with --tls-cert and --tls-key the HTTP door answers HTTPS
// only, and the embedded NATS server's client port takes TLS connections
// only; another ledger process trusts the server with --nats-ca.
func TestServeTLS(t *testing.T) {
	pki := newTestPKI(t)
	m := NewMain()
	m.Config.TLSCert, m.Config.TLSKey = pki.CertFile, pki.KeyFile
	m.Config.MetricsListen = "127.0.0.1:0"
	openMainWith(t, m, filepath.Join(t.TempDir(), "data"))
	if !strings.HasPrefix(m.HTTP.URL(), "https://") || !strings.HasPrefix(m.Store.ClientURL(), "tls://") {
		t.Fatalf("URLs %s and %s", m.HTTP.URL(), m.Store.ClientURL())
	}
	https := pki.client()

	// HTTPS with the CA: the API answers, with HSTS.
	event := `{"type":"received","dossier":"000.00.31.H26-240304-0101","unit":"00127","at":"2024-03-04T09:00:00+07:00","procedure":"1.001776","channel":"direct","days":3}`
	req, err := http.NewRequest("POST", m.HTTP.URL()+"/v1/events", strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokenOf(t, m, testDesk))
	req.Header.Set("Content-Type", "application/json")
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.TLS == nil {
		t.Fatalf("POST over HTTPS: %d %s", resp.StatusCode, b)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no Strict-Transport-Security over HTTPS")
	}

	// --metrics-listen is HTTPS too.
	if resp, err := https.Get(m.MetricsHTTP.URL() + "/metrics"); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(m.MetricsHTTP.URL(), "https://") {
		t.Errorf("metrics over HTTPS at %s: %v", m.MetricsHTTP.URL(), err)
	} else {
		resp.Body.Close()
	}

	// The session cookie of the sign-in page is Secure.
	sup := tokenOf(t, m, hoso.Principal{Name: "sup-tls", Role: hoso.RoleSupervisor, Unit: "004"})
	noRedirect := *https
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = noRedirect.PostForm(m.HTTP.URL()+"/sign-in", url.Values{"token": {sup}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "hoso_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Errorf("sign-in over HTTPS: %d, cookie %+v", resp.StatusCode, session)
	}

	// Plain HTTP on the same port gets no answer of the API.
	plainURL := "http://" + strings.TrimPrefix(m.HTTP.URL(), "https://") + "/healthz"
	if resp, err := http.Get(plainURL); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), `"ok"`) {
			t.Errorf("plain HTTP to the HTTPS door: %d %s", resp.StatusCode, b)
		}
	}
	// HTTPS without the CA is refused by the client.
	if resp, err := http.Get(m.HTTP.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the test CA's certificate was trusted without the CA")
	}

	// NATS: a desk with the CA connects over TLS and submits.
	deskAuth, err := nats.NkeyOptionFromSeed(m.Store.DeskCredentials())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(m.Store.ClientURL(), deskAuth, nats.RootCAs(pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if state, err := nc.TLSConnectionState(); err != nil || !state.HandshakeComplete {
		t.Fatalf("NATS connection not over TLS: %v", err)
	}
	reply, err := nc.RequestMsg(ingestMsg(t, m, []byte(`{"type":"transferred","dossier":"000.00.31.H26-240304-0101","unit":"00127","to_unit":"004","at":"2024-03-04T10:00:00+07:00"}`)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res hoso.AppendResult
	if err := json.Unmarshal(reply.Data, &res); err != nil || res.Version != 2 {
		t.Fatalf("ingest over TLS: %s (%v)", reply.Data, err)
	}
	// The same desk as a NATS user of its own: its token over TLS.
	byToken, err := nats.Connect(m.Store.ClientURL(), nats.Token(tokenOf(t, m, testDesk)), nats.RootCAs(pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	defer byToken.Close()
	reply, err = byToken.Request(eventstore.DeskSubject(testDesk.Name), []byte(`{"type":"resolved","dossier":"000.00.31.H26-240304-0101","unit":"004","at":"2024-03-04T10:00:00+07:00","outcome":"approved"}`), 10*time.Second)
	if err != nil || json.Unmarshal(reply.Data, &res) != nil || res.Version != 3 {
		t.Fatalf("ingest by a desk's token over TLS: %s (%v)", reply.Data, err)
	}
	// A client that does not trust the CA is refused: the port speaks
	// nothing but TLS (nats.go switches to it on the server's tls_required).
	if nc, err := nats.Connect(m.Store.ClientURL(), deskAuth); err == nil {
		nc.Close()
		t.Error("NATS connected without trusting the CA")
	}

	// Another process of the ledger on this server: --nats-url with the
	// CA connects; without it, it is refused.
	other := NewMain()
	other.Config.NATSURL, other.Config.NATSCredentials = m.Store.ClientURL(), m.Store.LedgerCredentials()
	other.Config.ReadModel = false
	other.Config.NATSCA = pki.CAFile
	openMainWith(t, other, filepath.Join(t.TempDir(), "other"))
	if other.Store.Conn().ConnectedUrl() == "" {
		t.Fatal("--nats-ca: not connected")
	}
	refused := NewMain()
	refused.Config = other.Config
	refused.Config.NATSCA = ""
	refused.Config.DataDir = filepath.Join(t.TempDir(), "refused")
	refused.Config.HTTPAddr, refused.Config.LogLevel = "127.0.0.1:0", "error"
	if err := refused.Open(context.Background()); err == nil {
		refused.Close()
		t.Error("a process without --nats-ca trusted the test CA")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("refused for another reason: %v", err)
	}
}

// TestListenRule: an address beyond loopback is served with TLS or with
// --insecure-listen, never silently in the clear.
func TestListenRule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      func(*Config)
		err      string // a part of the refusal; "" when allowed
		insecure string // what --insecure-listen let through
	}{
		{"defaults", func(*Config) {}, "", ""},
		{"loopback v4", func(c *Config) { c.HTTPAddr, c.NATSListen = "127.0.0.1:8080", "127.1.2.3:4222" }, "", ""},
		{"loopback v6", func(c *Config) { c.HTTPAddr, c.NATSListen = "[::1]:8080", "[::1]:4222" }, "", ""},
		{"localhost", func(c *Config) { c.HTTPAddr, c.NATSListen = "localhost:8080", "LocalHost:4222" }, "", ""},
		{"embedded NATS default", func(c *Config) { c.NATSListen = "" }, "", ""},
		{"every interface", func(c *Config) { c.HTTPAddr = ":8080" }, `--http ":8080" is not a loopback address`, ""},
		{"empty HTTP", func(c *Config) { c.HTTPAddr = "" }, `--http "" is not a loopback address`, ""},
		{"unspecified v4", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, "--http", ""},
		{"unspecified v6", func(c *Config) { c.HTTPAddr = "[::]:8080" }, "--http", ""},
		{"LAN address", func(c *Config) { c.HTTPAddr = "192.168.1.10:8080" }, "--http", ""},
		{"host name", func(c *Config) { c.HTTPAddr = "ledger.example:8080" }, "--http", ""},
		{"NATS beyond loopback", func(c *Config) { c.NATSListen = "0.0.0.0:4222" }, `--nats-listen "0.0.0.0:4222"`, ""},
		{"metrics beyond loopback", func(c *Config) { c.MetricsListen = "10.0.0.5:9464" }, `--metrics-listen "10.0.0.5:9464"`, ""},
		{"metrics on loopback", func(c *Config) { c.MetricsListen = "127.0.0.1:9464" }, "", ""},
		{"NATS of --nats-url", func(c *Config) { c.NATSListen, c.NATSURL = "0.0.0.0:4222", "tls://nats.example:4222" }, "", ""},
		{"TLS", func(c *Config) { c.HTTPAddr, c.NATSListen, c.TLSCert = "0.0.0.0:8443", "0.0.0.0:4222", "cert.pem" }, "", ""},
		{"insecure", func(c *Config) { c.HTTPAddr, c.NATSListen, c.InsecureListen = "0.0.0.0:8080", "10.0.0.5:4222", true }, "", "--http=0.0.0.0:8080 --nats-listen=10.0.0.5:4222"},
		{"insecure on loopback", func(c *Config) { c.InsecureListen = true }, "", ""},
		{"unparsable, left to the listener", func(c *Config) { c.HTTPAddr = "127.0.0.1" }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			insecure, err := checkListen(c)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--insecure-listen") || !strings.Contains(err.Error(), "--tls-cert")):
				t.Errorf("got %v, want a refusal containing %q and naming --tls-cert and --insecure-listen", err, tc.err)
			}
			if got := strings.Join(insecure, " "); got != tc.insecure {
				t.Errorf("let through %q, want %q", got, tc.insecure)
			}
		})
	}

	// Main refuses before it listens or touches the data directory.
	m := NewMain()
	m.Config.DataDir = filepath.Join(t.TempDir(), "data")
	m.Config.HTTPAddr, m.Config.LogLevel = "0.0.0.0:0", "error"
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--http") {
		m.Close()
		t.Fatalf("Open on 0.0.0.0 without TLS: %v", err)
	}
	if _, err := os.Stat(m.Config.DataDir); !os.IsNotExist(err) {
		t.Errorf("the refused Open made its data directory: %v", err)
	}
}

// TestCertificateRenewed: a certificate renewed in its files is served
// from the next check on, and a pair that does not load leaves the
// previous one served.
func TestCertificateRenewed(t *testing.T) {
	pki := newTestPKI(t)
	var log bytes.Buffer
	files := &certFiles{certFile: pki.CertFile, keyFile: pki.KeyFile, every: 0, log: slog.New(slog.NewTextHandler(&log, nil))}
	if err := files.load(); err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		cert, err := files.get(nil)
		if err != nil || cert == nil {
			t.Fatalf("get: %v", err)
		}
		return cert.Leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 2 {
		t.Fatalf("serial %d, want 2", got)
	}
	pki.issue(t, 3)
	if got := serial(); got != 3 {
		t.Fatalf("after renewal: serial %d, want 3", got)
	}
	if !strings.Contains(log.String(), "TLS certificate renewed") {
		t.Errorf("renewal not logged:\n%s", log.String())
	}
	// Half a renewal: a new certificate, the old key.
	key, err := os.ReadFile(pki.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pki.issue(t, 4)
	if err := os.WriteFile(pki.KeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 3 {
		t.Errorf("with a key that does not match: serial %d, want the previous 3", got)
	}
	if !strings.Contains(log.String(), "do not load") {
		t.Errorf("the failed load is not logged:\n%s", log.String())
	}
	// Not read again before its time.
	files.every = time.Hour
	pki.issue(t, 5)
	if got := serial(); got != 3 {
		t.Errorf("read again before the interval: serial %d", got)
	}

	// Missing or half-given flags are refused at start, naming them.
	for _, tc := range []struct{ cert, key, want string }{
		{pki.CertFile, "", "--tls-cert needs --tls-key"},
		{"", pki.KeyFile, "--tls-key needs --tls-cert"},
		{pki.CertFile, filepath.Join(t.TempDir(), "missing.pem"), "--tls-key"},
	} {
		m := NewMain()
		m.Config.DataDir = filepath.Join(t.TempDir(), "data")
		m.Config.TLSCert, m.Config.TLSKey, m.Config.LogLevel = tc.cert, tc.key, "error"
		if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			m.Close()
			t.Errorf("--tls-cert %q --tls-key %q: %v, want %q", tc.cert, tc.key, err, tc.want)
		}
	}
}
