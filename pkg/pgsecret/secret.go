// Package pgsecret reads the JSON of a PostgreSQL secret in Secrets Manager,
// the same way for the rotation function (functions/dbrotate) and for the
// applications that connect with it (pkg/pgpool): the fields of AWS's
// PostgreSQL rotation templates, the TLS settings dbrotate documents
// (docs/dbrotate.md: sslmode, sslservername, sslrootcertpem,
// sslrootcertonly), and the TLS configuration those settings mean. Fields it
// does not know are kept verbatim, so a rotated value keeps them.
//
// It owns the format and its checks; errors name fields and never quote a
// password. It does not own what a reader does with a secret: which CA roots
// are the default, whether plaintext is allowed, role-name rules, or
// anything of the rotation (those are the callers'). It imports only the
// standard library.
package pgsecret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Field names. The first seven are those of AWS's PostgreSQL rotation
// templates; the rest are dbrotate's optional TLS settings.
const (
	FieldEngine    = "engine"
	FieldHost      = "host"
	FieldPort      = "port"
	FieldUsername  = "username"
	FieldPassword  = "password"
	FieldDBName    = "dbname"
	FieldMasterARN = "masterarn"

	FieldSSLMode       = "sslmode"        // verify-full (default), verify-ca, require, disable
	FieldSSLServerName = "sslservername"  // name the server certificate must carry, when host is a CNAME or an IP
	FieldSSLRootCert   = "sslrootcertpem" // PEM CA bundle trusted in addition to the reader's default roots
	// FieldSSLRootCertOnly, true, trusts sslrootcertpem alone, not the
	// reader's default roots. For a team that pins its private CA.
	FieldSSLRootCertOnly = "sslrootcertonly"
)

// TLS modes, named as libpq names them. There is no "prefer" or "allow": a
// connection never falls back from TLS to plaintext.
const (
	SSLVerifyFull = "verify-full"
	SSLVerifyCA   = "verify-ca"
	SSLRequire    = "require"
	SSLDisable    = "disable"
)

// DefaultPort and DefaultDBName apply when the secret has no port or dbname,
// as in AWS's templates.
const (
	DefaultPort   = 5432
	DefaultDBName = "postgres"
)

// maxNameLen is PostgreSQL's NAMEDATALEN-1, the longest database name.
const maxNameLen = 63

// Secret is a parsed PostgreSQL secret. Port and DBName are as written (0
// and "" when absent; see PortOrDefault and DBNameOrDefault).
type Secret struct {
	Engine    string
	Host      string
	Port      int
	Username  string
	Password  string
	DBName    string
	MasterARN string

	SSLMode       string // one of the SSL* modes; SSLVerifyFull when absent
	SSLServerName string
	SSLRootCert   []byte
	// SSLRootCertOnly: SSLRootCert is the only trust anchor.
	SSLRootCertOnly bool

	raw map[string]json.RawMessage
}

// String keeps the password out of every log line.
func (s *Secret) String() string {
	return fmt.Sprintf("pgsecret.Secret{user=%s host=%s port=%d db=%s password=[REDACTED]}", s.Username, s.Host, s.Port, s.DBName)
}

// GoString is String, for %#v.
func (s *Secret) GoString() string { return s.String() }

// Parse reads an application secret: the credentials an application logs
// in with. It needs host, username and password; it also reads masterarn
// and checks the TLS settings. which names the value in errors ("the
// AWSCURRENT secret value"); errors never quote the password or any value
// that could be secret.
func Parse(which string, b []byte) (*Secret, error) {
	s, err := ParseLogin(which, b)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, val string }{{FieldHost, s.Host}, {FieldUsername, s.Username}, {FieldPassword, s.Password}} {
		if f.val == "" {
			return nil, fmt.Errorf("%s has no %q field; a PostgreSQL secret needs host, username and password (port, dbname, engine optional)", which, f.name)
		}
	}
	if s.MasterARN, err = s.str(FieldMasterARN); err != nil {
		return nil, fmt.Errorf("%s: %w", which, err)
	}
	if err := s.parseTLS(); err != nil {
		return nil, fmt.Errorf("%s: %w", which, err)
	}
	return s, nil
}

// ParseLogin reads the login fields of AWS's templates alone (engine, host,
// port, username, password, dbname), none of them required, and ignores
// masterarn and the TLS settings: the shape of an admin ("master") secret, which
// may hold only username and password as RDS-managed master secrets do.
func ParseLogin(which string, b []byte) (*Secret, error) {
	s := &Secret{}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s.raw); err != nil || s.raw == nil {
		return nil, fmt.Errorf("%s is not a JSON object (SecretString must hold the JSON of AWS's PostgreSQL templates)", which)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s has data after its JSON object", which)
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{FieldEngine, &s.Engine}, {FieldHost, &s.Host}, {FieldUsername, &s.Username}, {FieldPassword, &s.Password},
		{FieldDBName, &s.DBName}} {
		v, err := s.str(f.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		*f.dst = v
	}
	if s.Engine != "" && !strings.EqualFold(s.Engine, "postgres") && !strings.EqualFold(s.Engine, "postgresql") && !strings.EqualFold(s.Engine, "aurora-postgresql") {
		return nil, fmt.Errorf("%s has engine \"%s\"; only PostgreSQL secrets (engine \"postgres\") are read", which, printable(s.Engine))
	}
	if strings.ContainsAny(s.Host, " \t\r\n/,=") {
		return nil, fmt.Errorf("%s: host \"%s\" is not a host name or address", which, printable(s.Host))
	}
	if strings.ContainsRune(s.DBName, 0) || len(s.DBName) > maxNameLen {
		return nil, fmt.Errorf("%s: dbname is not a valid database name", which)
	}
	if raw, ok := s.Field(FieldPort); ok {
		p, err := parsePort(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		s.Port = p
	}
	return s, nil
}

// parseTLS reads and checks the TLS settings.
func (s *Secret) parseTLS() error {
	var err error
	if s.SSLMode, err = s.str(FieldSSLMode); err != nil {
		return err
	}
	s.SSLMode = strings.ToLower(s.SSLMode)
	switch s.SSLMode {
	case "":
		s.SSLMode = SSLVerifyFull
	case SSLVerifyFull, SSLVerifyCA, SSLRequire, SSLDisable:
	default:
		return fmt.Errorf("%q is \"%s\"; use verify-full (default), verify-ca, require, or disable (plaintext, where the reader allows it); there is no fallback mode", FieldSSLMode, printable(s.SSLMode))
	}
	if s.SSLServerName, err = s.str(FieldSSLServerName); err != nil {
		return err
	}
	pemText, err := s.str(FieldSSLRootCert)
	if err != nil {
		return err
	}
	if pemText != "" {
		s.SSLRootCert = []byte(pemText)
	}
	if s.SSLRootCertOnly, err = s.boolean(FieldSSLRootCertOnly); err != nil {
		return err
	}
	if s.SSLRootCertOnly {
		switch {
		case len(s.SSLRootCert) == 0:
			return fmt.Errorf("%q is true but %q is empty: nothing would be trusted; put your CA's PEM in %q", FieldSSLRootCertOnly, FieldSSLRootCert, FieldSSLRootCert)
		case s.SSLMode != SSLVerifyFull && s.SSLMode != SSLVerifyCA:
			return fmt.Errorf("%q pins the CA, which only verify-full and verify-ca check; %q is %q", FieldSSLRootCertOnly, FieldSSLMode, s.SSLMode)
		}
	}
	return nil
}

// Field returns the raw JSON of a field that is present and not null, for a
// reader's own settings in the secret.
func (s *Secret) Field(name string) (json.RawMessage, bool) {
	raw, ok := s.raw[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, false
	}
	return raw, true
}

// str reads an optional string field, trimmed of surrounding space; a
// non-string value is an error that names the field but never shows the
// value.
func (s *Secret) str(field string) (string, error) {
	raw, ok := s.Field(field)
	if !ok {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("field %q must be a string", field)
	}
	return strings.TrimSpace(v), nil
}

// boolean reads an optional true/false field: a JSON boolean or the strings
// "true" / "false".
func (s *Secret) boolean(field string) (bool, error) {
	raw, ok := s.Field(field)
	if !ok {
		return false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var v string
	if json.Unmarshal(raw, &v) == nil {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("field %q must be true or false", field)
}

// parsePort accepts 5432 and "5432", as AWS's templates do.
func parsePort(raw json.RawMessage) (int, error) {
	var n json.Number
	var s string
	text := ""
	switch {
	case json.Unmarshal(raw, &n) == nil:
		text = n.String()
	case json.Unmarshal(raw, &s) == nil:
		text = strings.TrimSpace(s)
	default:
		return 0, fmt.Errorf("field %q must be a number or a string holding one", FieldPort)
	}
	p, err := strconv.Atoi(text)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port \"%s\" is not a TCP port (1-65535)", printable(text))
	}
	return p, nil
}

// PortOrDefault returns the port, defaulting to PostgreSQL's.
func (s *Secret) PortOrDefault() int {
	if s.Port == 0 {
		return DefaultPort
	}
	return s.Port
}

// DBNameOrDefault returns the database, defaulting as AWS's templates do.
func (s *Secret) DBNameOrDefault() string {
	if s.DBName == "" {
		return DefaultDBName
	}
	return s.DBName
}

// WithCredentials returns the secret's JSON with username and password
// replaced and every other field, known or not, kept as it was.
func (s *Secret) WithCredentials(username, password string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(s.raw)+2)
	for k, v := range s.raw {
		out[k] = v
	}
	u, err := json.Marshal(username)
	if err != nil {
		return nil, err
	}
	p, err := json.Marshal(password)
	if err != nil {
		return nil, err
	}
	out[FieldUsername] = u
	out[FieldPassword] = p
	return json.Marshal(out)
}

// printable returns s with control characters escaped and cut to 80 bytes,
// for error messages about hostile input.
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
