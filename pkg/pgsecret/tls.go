package pgsecret

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// ErrPlaintext is TLSConfig's answer for sslmode=disable: the secret asks
// for no TLS at all, and whether that is allowed is the reader's decision.
var ErrPlaintext = errors.New("the secret asks for sslmode=disable (no TLS)")

// Roots returns the pool of CAs a connection for the secret trusts: the
// reader's defaults plus sslrootcertpem, or with sslrootcertonly
// sslrootcertpem alone. defaults is not changed; nil stands for the
// system roots.
func (s *Secret) Roots(defaults *x509.CertPool) (*x509.CertPool, error) {
	if defaults == nil {
		if sys, err := x509.SystemCertPool(); err == nil && sys != nil {
			defaults = sys
		} else {
			defaults = x509.NewCertPool()
		}
	}
	if !s.SSLRootCertOnly && len(s.SSLRootCert) == 0 {
		return defaults, nil
	}
	pool := x509.NewCertPool()
	if !s.SSLRootCertOnly {
		pool = defaults.Clone()
	}
	if !pool.AppendCertsFromPEM(s.SSLRootCert) {
		return nil, errors.New("the secret's " + FieldSSLRootCert + " holds no PEM certificate")
	}
	return pool, nil
}

// TLSConfig returns the TLS settings of the secret's sslmode, trusting
// Roots(defaults): verify-full verifies the chain and the name
// (sslservername, else host), verify-ca the chain only (as libpq's
// verify-ca), require encrypts without verifying anything. TLS 1.2 at
// least. For sslmode=disable it returns ErrPlaintext.
func (s *Secret) TLSConfig(defaults *x509.CertPool) (*tls.Config, error) {
	if s.SSLMode == SSLDisable {
		return nil, ErrPlaintext
	}
	roots, err := s.Roots(defaults)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	switch s.SSLMode {
	case SSLVerifyCA:
		// Verify the chain but not the name.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	case SSLRequire:
		cfg.InsecureSkipVerify = true // encrypted, not verified, as the secret asks
	default: // verify-full, also for a Secret not made by Parse
		cfg.ServerName = s.Host
		if s.SSLServerName != "" {
			cfg.ServerName = s.SSLServerName
		}
	}
	return cfg, nil
}
