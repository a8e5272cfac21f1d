package pgpool

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The fields of a database secret this package reads: those of AWS's
// PostgreSQL rotation templates and the TLS settings functions/dbrotate
// documents (docs/dbrotate.md). Other fields are ignored.
const (
	fieldEngine        = "engine"
	fieldHost          = "host"
	fieldPort          = "port"
	fieldUsername      = "username"
	fieldPassword      = "password"
	fieldDBName        = "dbname"
	fieldSSLMode       = "sslmode"        // verify-full (default), verify-ca, require, disable
	fieldSSLServerName = "sslservername"  // name the server certificate must carry
	fieldSSLRootCert   = "sslrootcertpem" // PEM CA bundle trusted in addition to the system roots
)

// TLS modes, as libpq and dbrotate name them. There is no fallback from TLS
// to plaintext.
const (
	SSLVerifyFull = "verify-full"
	SSLVerifyCA   = "verify-ca"
	SSLRequire    = "require"
	SSLDisable    = "disable"
)

// credentials are one parsed secret version; String never shows the password.
type credentials struct {
	host, user, password, db string
	port                     int
	sslMode, serverName      string
	rootPEM                  []byte
}

func (c *credentials) String() string {
	return fmt.Sprintf("pgpool.credentials{user=%s host=%s port=%d db=%s password=[REDACTED]}", c.user, c.host, c.port, c.db)
}

// parseSecret reads a secret value. Errors name fields, never values.
func parseSecret(b []byte) (*credentials, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, errors.New("pgpool: the secret is not one JSON object (the shape of AWS's PostgreSQL templates)")
	}
	str := func(f string) (string, error) {
		r, ok := raw[f]
		if !ok || bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
			return "", nil
		}
		var s string
		if json.Unmarshal(r, &s) != nil {
			return "", fmt.Errorf("pgpool: the secret's %q field must be a string", f)
		}
		return strings.TrimSpace(s), nil
	}
	c := &credentials{port: 5432}
	var err error
	var engine, pem string
	for _, f := range []struct {
		name string
		dst  *string
	}{{fieldEngine, &engine}, {fieldHost, &c.host}, {fieldUsername, &c.user}, {fieldPassword, &c.password}, {fieldDBName, &c.db},
		{fieldSSLMode, &c.sslMode}, {fieldSSLServerName, &c.serverName}, {fieldSSLRootCert, &pem}} {
		if *f.dst, err = str(f.name); err != nil {
			return nil, err
		}
	}
	if engine != "" && !strings.EqualFold(engine, "postgres") && !strings.EqualFold(engine, "postgresql") && !strings.EqualFold(engine, "aurora-postgresql") {
		return nil, errors.New("pgpool: the secret's engine is not PostgreSQL")
	}
	if c.host == "" || c.user == "" || c.password == "" {
		return nil, errors.New("pgpool: the secret needs host, username and password fields")
	}
	if r, ok := raw[fieldPort]; ok && !bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
		var n json.Number
		var s string
		text := ""
		if json.Unmarshal(r, &n) == nil {
			text = n.String()
		} else if json.Unmarshal(r, &s) == nil {
			text = strings.TrimSpace(s)
		}
		p, err := strconv.Atoi(text)
		if err != nil || p < 1 || p > 65535 {
			return nil, errors.New("pgpool: the secret's port is not a TCP port (1-65535)")
		}
		c.port = p
	}
	if c.db == "" {
		c.db = "postgres"
	}
	c.sslMode = strings.ToLower(c.sslMode)
	switch c.sslMode {
	case "":
		c.sslMode = SSLVerifyFull
	case SSLVerifyFull, SSLVerifyCA, SSLRequire, SSLDisable:
	default:
		return nil, errors.New("pgpool: the secret's sslmode must be verify-full (default), verify-ca, require or disable")
	}
	if pem != "" {
		c.rootPEM = []byte(pem)
	}
	return c, nil
}

// tlsConfig builds the TLS settings of c as dbrotate does: verify-full checks
// the chain and the name (sslservername, else host), verify-ca the chain
// only, require encrypts without verifying; disable is plaintext and needs
// allowPlaintext. roots are the system roots plus Config.CABundlePEM.
func (c *credentials) tlsConfig(roots *x509.CertPool, allowPlaintext bool) (*tls.Config, error) {
	if c.sslMode == SSLDisable {
		if !allowPlaintext {
			return nil, errors.New("pgpool: the secret asks for sslmode=disable (no TLS); set Config.AllowPlaintext to accept it")
		}
		return nil, nil
	}
	if len(c.rootPEM) > 0 {
		roots = roots.Clone()
		if !roots.AppendCertsFromPEM(c.rootPEM) {
			return nil, errors.New("pgpool: the secret's sslrootcertpem holds no PEM certificate")
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	switch c.sslMode {
	case SSLVerifyFull:
		cfg.ServerName = c.host
		if c.serverName != "" {
			cfg.ServerName = c.serverName
		}
	case SSLVerifyCA:
		cfg.InsecureSkipVerify = true // the chain is verified below, the name is not (libpq's verify-ca)
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	case SSLRequire:
		cfg.InsecureSkipVerify = true // sslmode=require: encrypted, not verified, as the secret asks
	}
	return cfg, nil
}
