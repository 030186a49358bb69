package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
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
	conf, err := loadTLS(c.TLSCert, c.TLSKey)
	if err != nil {
		return err
	}
	m.TLS = conf
	insecure, err := checkListen(c)
	if err != nil {
		return err
	}
	if len(insecure) > 0 {
		m.Logger.Warn("listening without TLS beyond loopback (--insecure-listen): bearer tokens, session cookies and events cross the network in the clear",
			"addresses", strings.Join(insecure, " "))
	}
	if conf == nil {
		return nil
	}
	leaf := conf.Certificates[0].Leaf
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	m.Logger.Info("TLS on the HTTP door and the embedded NATS server", "cert", c.TLSCert,
		"names", strings.Join(names, ","), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if time.Now().After(leaf.NotAfter) {
		m.Logger.Warn("the TLS certificate has expired: clients will refuse it", "cert", c.TLSCert, "not_after", leaf.NotAfter)
	}
	return nil
}

// loadTLS returns the server configuration of a certificate and its key,
// nil when neither is given.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case keyFile == "":
		return nil, errors.New("--tls-cert needs --tls-key, the certificate's private key")
	case certFile == "":
		return nil, errors.New("--tls-key needs --tls-cert, the certificate of the key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s and --tls-key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
