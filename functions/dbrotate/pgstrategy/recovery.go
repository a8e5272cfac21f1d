package pgstrategy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// liveVersion is a stored version whose credentials the database accepts.
type liveVersion struct {
	conn    Session
	version *rotation.Version
	sec     *Secret
	what    string // for the log and the step's details
}

// findLive looks for the stored version of the rotated secret whose
// credentials the database still accepts: the versions with a value
// (Store.Versions, newest first, at most rotation.DefaultVersionLimit),
// skipping those for another server, for a user not in users, or with a
// password in skip (already tried). tried names what was tried before, for
// the error, refused the first refusal (kept as the error's cause). The
// first that logs in wins; a failure other than a refused
// password (the server is down) ends the search with that error. When no
// stored password is accepted the error lists every version tried, by id
// (never a value): the password was then changed outside rotation, or by a
// version Secrets Manager no longer keeps.
func (s *Strategy) findLive(ctx context.Context, st rotation.Store, ep endpoint, cur *Secret, users []string, skip map[string]bool, tried []string, refused error) (*liveVersion, error) {
	vs, err := st.Versions(ctx, rotation.DefaultVersionLimit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, v := range vs {
		sec, perr := ParseSecret("a stored version of the secret", v.Value)
		if perr != nil || !sameTarget(sec, cur) || !slices.Contains(users, sec.Username) || skip[sec.Password] {
			continue
		}
		skip[sec.Password] = true
		label := "version " + v.ID
		if len(v.Stages) > 0 {
			label += " (" + strings.Join(v.Stages, ",") + ")"
		}
		ids = append(ids, v.ID)
		conn, cerr := s.connect(ctx, ep, sec.Username, sec.Password, false, "the user "+sec.Username+" of "+label)
		if cerr == nil {
			what := "the database was at the password of " + label + ", which no label points at any more"
			if slices.Contains(v.Stages, rotation.StagePrevious) {
				what = "the database was still at the AWSPREVIOUS password (" + label + ")"
			} else if len(v.Stages) > 0 {
				what = "the database was at the password of " + label
			}
			return &liveVersion{conn: conn, version: v, sec: sec, what: what}, nil
		}
		if !isAuthFailure(cerr) {
			return nil, cerr
		}
	}
	all := tried
	if len(ids) > 0 {
		all = append(all, "the stored versions "+strings.Join(ids, ", "))
	}
	return nil, rotation.NewError(rotation.ClassAuthentication, "postgres:connect",
		fmt.Sprintf("the database at %s refuses the password of user %s in every stored version of the secret tried (%s; the %d newest versions with a value are tried): the password was changed outside rotation, or by a version Secrets Manager no longer keeps; set the role's password to the AWSCURRENT value (or store the database's password as AWSCURRENT) and rotate again",
			ep, strings.Join(users, " or "), strings.Join(all, "; "), rotation.DefaultVersionLimit), refused)
}
