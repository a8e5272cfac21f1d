package pgstrategy

import (
	"context"
	"fmt"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// checkTakeover guards against a secret being used to take over another
// role: whoever can write the secret (and knows the current password) must
// not get the function to set a password on a role that is more powerful
// than the current one. The pending role may not have an attribute
// (SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS) the current
// role lacks, nor be a member of a role the current role is not a member
// of. In clone mode the clone must be a member of the original (then going
// back to the original is always allowed: the clone already inherits its
// rights). It reports whether the pending role exists.
func checkTakeover(ctx context.Context, conn Session, cur, pend *Secret, who string) (bool, error) {
	var f TakeoverFacts
	err := dbCall(ctx, "postgres:query", func(ctx context.Context) error {
		var err error
		f, err = conn.Takeover(ctx, pend.Username, cur.Username)
		return err
	})
	if err != nil {
		return false, classifyExec(err, "checking the roles of the pair", who)
	}
	if !f.Found {
		return false, nil
	}
	attrs, roles, related := f.ExtraAttrs, f.ExtraRoles, f.Related
	refuse := func(why string) (bool, error) {
		return true, rotation.NewError(rotation.ClassConfiguration, "alternating users",
			fmt.Sprintf("refusing to set a password on %s: %s; a secret may only switch between two equally privileged login roles (grant the same to both, or fix the secret)", pend.Username, why), nil)
	}
	if pend.UserPair == nil {
		if !related {
			return refuse(fmt.Sprintf("in clone mode the clone must be a member of the original role, and %s and %s are not related", pend.Username, cur.Username))
		}
		if !strings.HasSuffix(pend.Username, cloneSuffix) {
			return true, nil // back to the original, whose member the current clone is
		}
	}
	if attrs != "" {
		return refuse(fmt.Sprintf("it has %s, which %s lacks", attrs, cur.Username))
	}
	if roles != "" {
		return refuse(fmt.Sprintf("it is a member of %s, which %s is not", roles, cur.Username))
	}
	return true, nil
}
