package pgstrategy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Secret JSON field names. The first seven are those of AWS's PostgreSQL
// rotation templates; the rest are this function's optional settings.
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
	FieldSSLRootCert   = "sslrootcertpem" // PEM CA bundle trusted in addition to the default roots
	// FieldSSLRootCertOnly, true, trusts sslrootcertpem alone: not the
	// system roots, the packaged RDS / Amazon Trust Services roots, nor
	// DB_CA_BUNDLE_FILE. For a team that pins its private CA.
	FieldSSLRootCertOnly = "sslrootcertonly"
	FieldUserPair        = "userpair" // pre-created alternating pair: ["app_blue","app_green"]
)

// TLS modes, named as libpq names them. There is no "prefer" or "allow": a
// connection never falls back from TLS to plaintext.
const (
	SSLVerifyFull = "verify-full"
	SSLVerifyCA   = "verify-ca"
	SSLRequire    = "require"
	SSLDisable    = "disable"
)

const defaultPort = 5432

// Secret is a parsed database secret. Fields this function does not know
// are kept verbatim and written back on rotation.
type Secret struct {
	Engine    string
	Host      string
	Port      int
	Username  string
	Password  string
	DBName    string
	MasterARN string

	SSLMode       string
	SSLServerName string
	SSLRootCert   []byte
	// SSLRootCertOnly: SSLRootCert is the only trust anchor.
	SSLRootCertOnly bool
	UserPair        []string // nil unless the secret names a pre-created pair

	raw map[string]json.RawMessage
}

// String keeps the password out of every log line.
func (s *Secret) String() string {
	return fmt.Sprintf("pgstrategy.Secret{user=%s host=%s port=%d db=%s password=[REDACTED]}", s.Username, s.Host, s.Port, s.DBName)
}

// GoString is String, for %#v.
func (s *Secret) GoString() string { return s.String() }

// Alternating reports whether the secret is rotated with an admin secret.
func (s *Secret) Alternating() bool { return s.MasterARN != "" }

func inputErr(what string, format string, args ...any) error {
	return rotation.NewError(rotation.ClassInput, what, fmt.Sprintf(format, args...), nil)
}

// ParseSecret parses an application secret (the rotated one). which names
// it in errors ("the AWSCURRENT secret value"). Errors never quote the
// password or any value that could be secret.
func ParseSecret(which string, b []byte) (*Secret, error) {
	s, err := parseCommon(which, b)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, val string }{{FieldHost, s.Host}, {FieldUsername, s.Username}, {FieldPassword, s.Password}} {
		if f.val == "" {
			return nil, inputErr("parse secret", "%s has no %q field; a PostgreSQL secret needs host, username and password (port, dbname, engine optional)", which, f.name)
		}
	}
	if err := ValidateRoleName(which+" username", s.Username); err != nil {
		return nil, inputErr("parse secret", "%v", err)
	}
	if s.SSLMode, err = s.str(FieldSSLMode); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	s.SSLMode = strings.ToLower(s.SSLMode)
	switch s.SSLMode {
	case "":
		s.SSLMode = SSLVerifyFull
	case SSLVerifyFull, SSLVerifyCA, SSLRequire, SSLDisable:
	default:
		return nil, inputErr("parse secret", "%s: %q is \"%s\"; use verify-full (default), verify-ca, require, or disable (plaintext, needs %s=true); there is no fallback mode", which, FieldSSLMode, printable(s.SSLMode), EnvAllowPlaintext)
	}
	if s.SSLServerName, err = s.str(FieldSSLServerName); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	pemText, err := s.str(FieldSSLRootCert)
	if err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if pemText != "" {
		s.SSLRootCert = []byte(pemText)
	}
	if s.SSLRootCertOnly, err = s.boolean(FieldSSLRootCertOnly); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if s.SSLRootCertOnly {
		switch {
		case len(s.SSLRootCert) == 0:
			return nil, inputErr("parse secret", "%s: %q is true but %q is empty: nothing would be trusted; put your CA's PEM in %q", which, FieldSSLRootCertOnly, FieldSSLRootCert, FieldSSLRootCert)
		case s.SSLMode != SSLVerifyFull && s.SSLMode != SSLVerifyCA:
			return nil, inputErr("parse secret", "%s: %q pins the CA, which only verify-full and verify-ca check; %q is %q", which, FieldSSLRootCertOnly, FieldSSLMode, s.SSLMode)
		}
	}
	if s.MasterARN, err = s.str(FieldMasterARN); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if raw, ok := s.raw[FieldUserPair]; ok && !isNull(raw) {
		var pair []string
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			return nil, inputErr("parse secret", "%s: %q must be an array of exactly two role names", which, FieldUserPair)
		}
		for _, n := range pair {
			if err := ValidateRoleName(which+" "+FieldUserPair+" entry", n); err != nil {
				return nil, inputErr("parse secret", "%v", err)
			}
		}
		if pair[0] == pair[1] {
			return nil, inputErr("parse secret", "%s: the two %q roles must differ", which, FieldUserPair)
		}
		if s.Username != pair[0] && s.Username != pair[1] {
			return nil, inputErr("parse secret", "%s: username %s is not one of the %q roles", which, s.Username, FieldUserPair)
		}
		s.UserPair = pair
	}
	return s, nil
}

// ParseAdminSecret parses the admin ("master") secret named by masterarn.
// It may have the full shape, or only username and password as RDS-managed
// master secrets do (host and port then come from the application secret).
func ParseAdminSecret(b []byte) (*Secret, error) {
	const which = "the admin secret named by masterarn"
	s, err := parseCommon(which, b)
	if err != nil {
		return nil, err
	}
	if s.Username == "" || s.Password == "" {
		return nil, inputErr("parse admin secret", "%s needs username and password fields", which)
	}
	if err := ValidateRoleName(which+" username", s.Username); err != nil {
		return nil, inputErr("parse admin secret", "%v", err)
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func parseCommon(which string, b []byte) (*Secret, error) {
	s := &Secret{}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s.raw); err != nil || s.raw == nil {
		return nil, inputErr("parse secret", "%s is not a JSON object (SecretString must hold the JSON of AWS's PostgreSQL templates)", which)
	}
	if dec.More() {
		return nil, inputErr("parse secret", "%s has data after its JSON object", which)
	}
	var err error
	if s.Engine, err = s.str(FieldEngine); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if s.Engine != "" && !strings.EqualFold(s.Engine, "postgres") && !strings.EqualFold(s.Engine, "postgresql") && !strings.EqualFold(s.Engine, "aurora-postgresql") {
		return nil, inputErr("parse secret", "%s has engine \"%s\"; this function rotates PostgreSQL secrets (engine \"postgres\")", which, printable(s.Engine))
	}
	if s.Host, err = s.str(FieldHost); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if strings.ContainsAny(s.Host, " \t\r\n/,=") {
		return nil, inputErr("parse secret", "%s: host \"%s\" is not a host name or address", which, printable(s.Host))
	}
	if s.Username, err = s.str(FieldUsername); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if s.Password, err = s.str(FieldPassword); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if s.DBName, err = s.str(FieldDBName); err != nil {
		return nil, inputErr("parse secret", "%s: %v", which, err)
	}
	if strings.ContainsRune(s.DBName, 0) || len(s.DBName) > maxIdentLen {
		return nil, inputErr("parse secret", "%s: dbname is not a valid database name", which)
	}
	if raw, ok := s.raw[FieldPort]; ok && !isNull(raw) {
		p, perr := parsePort(raw)
		if perr != nil {
			return nil, inputErr("parse secret", "%s: %v", which, perr)
		}
		s.Port = p
	}
	return s, nil
}

// str reads an optional string field; a non-string value is an error that
// names the field but never shows the value.
func (s *Secret) str(field string) (string, error) {
	raw, ok := s.raw[field]
	if !ok || isNull(raw) {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("field %q must be a string", field)
	}
	return strings.TrimSpace(v), nil
}

// boolean reads an optional true/false field: a JSON boolean or the
// strings "true" / "false".
func (s *Secret) boolean(field string) (bool, error) {
	raw, ok := s.raw[field]
	if !ok || isNull(raw) {
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

// port returns the port, defaulting to PostgreSQL's.
func (s *Secret) port() int {
	if s.Port == 0 {
		return defaultPort
	}
	return s.Port
}

// dbname returns the database, defaulting as AWS's templates do.
func (s *Secret) dbname() string {
	if s.DBName == "" {
		return "postgres"
	}
	return s.DBName
}

// WithCredentials returns the secret's JSON with username and password
// replaced and every other field, known or not, kept as it was.
func (s *Secret) WithCredentials(username, password string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(s.raw))
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

// sameTarget reports whether two application secrets address the same
// database (host, port, dbname), so that a pending value can never point the
// function somewhere the current one does not.
func sameTarget(a, b *Secret) bool {
	return sameHost(a.Host, b.Host) && a.port() == b.port() && a.dbname() == b.dbname()
}

// sameHost compares host names case-insensitively, ignoring a trailing dot.
func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
