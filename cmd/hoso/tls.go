package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// tlsFlags adds the flags of TLS on the HTTP door and the embedded NATS
// server's client port.
func (m *Main) tlsFlags(fs *flag.FlagSet) {
	c := &m.Config
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) file: the HTTP door serves HTTPS and the embedded NATS server's client port TLS with it; needs --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key file of --tls-cert")
	fs.StringVar(&c.NATSCA, "nats-ca", c.NATSCA, "PEM file of the certificate authorities to trust on --nats-url (default: the system's)")
	fs.BoolVar(&c.InsecureListen, "insecure-listen", c.InsecureListen, "listen on addresses other than loopback without TLS (behind a TLS-terminating proxy, or a network you trust): tokens and events then cross it in the clear")
}

// openTLS loads the certificate of --tls-cert and --tls-key into m.TLS
// (nil without them) and checks the NATS flags that go with it.
func (m *Main) openTLS() error {
	c := m.Config
	if c.NATSCA != "" && c.NATSURL == "" {
		return errors.New("--nats-ca is the CA of the cluster of --nats-url; the embedded server needs none (its own certificate is --tls-cert)")
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("--tls-cert needs --tls-key, the certificate's private key")
	case c.TLSCert == "" && c.TLSKey != "":
		return errors.New("--tls-key needs --tls-cert, the certificate of the key")
	}
	insecure, err := checkListen(c)
	if err != nil {
		return err
	}
	if len(insecure) > 0 {
		m.Logger.Warn("listening without TLS beyond loopback (--insecure-listen): bearer tokens, session cookies and events cross the network in the clear",
			"addresses", strings.Join(insecure, " "))
	}
	if c.TLSCert == "" {
		return nil
	}
	files := &certFiles{certFile: c.TLSCert, keyFile: c.TLSKey, every: certCheckEvery, log: m.Logger}
	if err := files.load(); err != nil {
		return err
	}
	m.TLS = &tls.Config{GetCertificate: files.get, MinVersion: tls.VersionTLS12}
	return nil
}

// certCheckEvery is how often the certificate files are read again.
const certCheckEvery = time.Minute

// certFiles serves the certificate of --tls-cert and --tls-key to both
// doors' handshakes, and reads the files again at most every so often: a
// renewed certificate is served from the next handshake on, without a
// restart. A pair that does not load (the key not written yet, say) is
// logged, and the previous certificate served meanwhile.
type certFiles struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	mu              sync.Mutex // guards the fields below, read and set by handshakes
	cert            *tls.Certificate
	certPEM, keyPEM []byte
	checked         time.Time
}

// load reads the pair for the first time; its error names the flags.
func (f *certFiles) load() error {
	certPEM, keyPEM, cert, err := f.read()
	if err != nil {
		return fmt.Errorf("--tls-cert %s and --tls-key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cert, f.certPEM, f.keyPEM, f.checked = cert, certPEM, keyPEM, time.Now()
	f.logCert("TLS on the HTTP door and the embedded NATS server")
	return nil
}

func (f *certFiles) read() (certPEM, keyPEM []byte, cert *tls.Certificate, err error) {
	if certPEM, err = os.ReadFile(f.certFile); err != nil {
		return nil, nil, nil, err
	}
	if keyPEM, err = os.ReadFile(f.keyFile); err != nil {
		return nil, nil, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, nil, err
	}
	return certPEM, keyPEM, &pair, nil
}

// get is the doors' tls.Config.GetCertificate.
func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < f.every {
		return f.cert, nil
	}
	f.checked = time.Now()
	certPEM, keyPEM, cert, err := f.read()
	switch {
	case err != nil:
		f.log.Warn("TLS certificate files do not load; serving the previous certificate until they do",
			"cert", f.certFile, "key", f.keyFile, "err", err)
	case !bytes.Equal(certPEM, f.certPEM) || !bytes.Equal(keyPEM, f.keyPEM):
		f.cert, f.certPEM, f.keyPEM = cert, certPEM, keyPEM
		f.logCert("TLS certificate renewed from its files")
	}
	return f.cert, nil
}

// logCert logs the names and expiry of the certificate being served.
func (f *certFiles) logCert(msg string) {
	leaf := f.cert.Leaf
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	f.log.Info(msg, "cert", f.certFile, "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if time.Now().After(leaf.NotAfter) {
		f.log.Warn("the TLS certificate has expired: clients will refuse it", "cert", f.certFile, "not_after", leaf.NotAfter)
	}
}

// checkListen applies the listen rule: an address that other machines can
// reach is served with TLS (--tls-cert), since bearer tokens and session
// cookies cross it, unless --insecure-listen accepts the risk. It returns
// the flags and addresses that --insecure-listen lets through.
func checkListen(c Config) (insecure []string, err error) {
	if c.TLSCert != "" {
		return nil, nil
	}
	doors := [][2]string{{"--http", c.HTTPAddr}}
	if c.NATSURL == "" && c.NATSListen != "" { // empty: the embedded default, loopback
		doors = append(doors, [2]string{"--nats-listen", c.NATSListen})
	}
	if c.MetricsListen != "" {
		doors = append(doors, [2]string{"--metrics-listen", c.MetricsListen})
	}
	for _, d := range doors {
		flagName, addr := d[0], d[1]
		if isLoopback(addr) {
			continue
		}
		if !c.InsecureListen {
			return nil, fmt.Errorf("%s %q is not a loopback address: serving it without TLS would send bearer tokens and events in the clear; give --tls-cert and --tls-key, listen on 127.0.0.1, or give --insecure-listen (behind a TLS-terminating proxy)", flagName, addr)
		}
		insecure = append(insecure, flagName+"="+addr)
	}
	return insecure, nil
}

// isLoopback reports whether a listen address (host:port) is reachable
// from this machine only: an IP of 127.0.0.0/8 or ::1, or localhost. An
// empty address or host listens on every interface, and so does an
// unspecified IP; another host name may resolve to anything. Any other
// address that does not parse is left to the listener, which refuses it.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr != ""
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
