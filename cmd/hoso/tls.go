package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
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
