package pgstrategy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// FieldUserPair names a pre-created alternating pair in the secret:
// ["app_blue","app_green"]. It is this function's own setting; the other
// fields are those of pkg/pgsecret.
const FieldUserPair = "userpair"

// Secret is a parsed database secret (pkg/pgsecret: the fields of AWS's
// templates and the TLS settings, unknown fields kept verbatim and written
// back on rotation) with the alternating pair this function reads.
type Secret struct {
	pgsecret.Secret
	UserPair []string // nil unless the secret names a pre-created pair
}

// Alternating reports whether the secret is rotated with an admin secret.
func (s *Secret) Alternating() bool { return s.MasterARN != "" }

func inputErr(what string, format string, args ...any) error {
	return rotation.NewError(rotation.ClassInput, what, fmt.Sprintf(format, args...), nil)
}

// ParseSecret parses an application secret (the rotated one). which names
// it in errors ("the AWSCURRENT secret value"). Errors never quote the
// password or any value that could be secret.
func ParseSecret(which string, b []byte) (*Secret, error) {
	ps, err := pgsecret.Parse(which, b)
	if err != nil {
		return nil, inputErr("parse secret", "%v", err)
	}
	if err := ValidateRoleName(which+" username", ps.Username); err != nil {
		return nil, inputErr("parse secret", "%v", err)
	}
	s := &Secret{Secret: *ps}
	if raw, ok := s.Field(FieldUserPair); ok {
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
	ps, err := pgsecret.ParseLogin(which, b)
	if err != nil {
		return nil, inputErr("parse secret", "%v", err)
	}
	if ps.Username == "" || ps.Password == "" {
		return nil, inputErr("parse admin secret", "%s needs username and password fields", which)
	}
	if err := ValidateRoleName(which+" username", ps.Username); err != nil {
		return nil, inputErr("parse admin secret", "%v", err)
	}
	return &Secret{Secret: *ps}, nil
}

// sameTarget reports whether two application secrets address the same
// database (host, port, dbname), so that a pending value can never point the
// function somewhere the current one does not.
func sameTarget(a, b *Secret) bool {
	return sameHost(a.Host, b.Host) && a.PortOrDefault() == b.PortOrDefault() && a.DBNameOrDefault() == b.DBNameOrDefault()
}

// sameHost compares host names case-insensitively, ignoring a trailing dot.
func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
