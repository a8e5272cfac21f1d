package pgstrategy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Test implements rotation.Strategy: log in with the pending credentials,
// and with alternating users run the preflight that warns about ownership
// and differing memberships or settings.
func (s *Strategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	var cur, pend *Secret
	var err error
	if req.ConfigTest {
		if cur, err = ParseSecret("the AWSCURRENT secret value", req.Current.Value); err != nil {
			return nil, err
		}
		pend = cur
	} else if cur, pend, err = s.pair(req.Current, req.Pending); err != nil {
		return nil, err
	}
	ep, err := s.endpointFor(pend)
	if err != nil {
		return nil, err
	}
	resp := &rotation.TestResponse{}
	resp.Details = map[string]string{"mode": modeOf(cur)}
	if ep.warning != "" {
		resp.Warnings = append(resp.Warnings, ep.warning)
	}
	label := "AWSPENDING"
	if req.ConfigTest {
		label = "AWSCURRENT"
	}
	conn, err := s.connect(ctx, ep, pend.Username, pend.Password, false, "the "+label+" user "+pend.Username)
	if err != nil {
		return resp, err
	}
	defer closeConn(conn)
	if !cur.Alternating() {
		return resp, nil
	}
	other, err := otherRole(pend)
	if err != nil {
		return resp, err
	}
	warns, err := preflight(ctx, conn, pend, other)
	if err != nil {
		return resp, err
	}
	for _, w := range warns {
		s.log.WarnContext(ctx, "alternating users preflight", "warning", w)
	}
	resp.Warnings = append(resp.Warnings, warns...)
	if req.ConfigTest {
		// Prove the admin side of the configuration too.
		adm, err := s.loadAdmin(ctx, req.Store, cur, ep)
		if err != nil {
			return resp, err
		}
		ac, err := s.adminConnect(ctx, adm)
		if err != nil {
			return resp, err
		}
		closeConn(ac)
	}
	return resp, nil
}

// preflight compares the two login roles of an alternating pair. In clone
// mode the original role owning objects is the expected layout (the clone
// reaches them through its membership), and that membership is left out of
// the comparison; objects owned by the clone are not reachable by the
// original, so they are reported. In pair mode neither login role should
// own anything: a NOLOGIN owner role that both are members of should.
func preflight(ctx context.Context, conn Session, pend *Secret, other string) ([]string, error) {
	var facts map[string]RoleFacts
	err := dbCall(ctx, "postgres:query", func(ctx context.Context) error {
		var err error
		facts, err = conn.Roles(ctx, []string{pend.Username, other})
		return err
	})
	if err != nil {
		return nil, classifyExec(err, "the alternating-users preflight query", "the AWSPENDING user "+pend.Username)
	}
	var warns []string
	pf := facts[pend.Username]
	of, ok := facts[other]
	if !ok {
		warns = append(warns, fmt.Sprintf("the other role of the pair, %s, does not exist", other))
		return warns, nil
	}
	clone, original := "", ""
	if pend.UserPair == nil {
		if strings.HasSuffix(pend.Username, cloneSuffix) {
			clone, original = pend.Username, other
		} else {
			clone, original = other, pend.Username
		}
	}
	for _, r := range []string{pend.Username, other} {
		f := facts[r]
		if f.Owned == 0 || r == original {
			continue
		}
		warns = append(warns, fmt.Sprintf("login role %s owns %d database objects (tables, sequences, views, functions, schemas) here; objects it creates are not usable by the other role of the pair unless granted. Make a NOLOGIN role that both are members of own them (ALTER … OWNER TO, and SET ROLE in migrations)", r, f.Owned))
	}
	pm, om := slices.Clone(pf.MemberOf), slices.Clone(of.MemberOf)
	if clone != "" {
		cm := &pm
		if other == clone {
			cm = &om
		}
		*cm = slices.DeleteFunc(*cm, func(s string) bool { return s == original })
	}
	if !slices.Equal(pm, om) {
		warns = append(warns, fmt.Sprintf("the role memberships of %s [%s] and %s [%s] differ; the application's privileges change with every rotation", pend.Username, strings.Join(pm, ","), other, strings.Join(om, ",")))
	}
	if !slices.Equal(pf.Config, of.Config) {
		warns = append(warns, fmt.Sprintf("the role settings (ALTER ROLE … SET) of %s and %s differ", pend.Username, other))
	}
	if pf.Attrs != of.Attrs {
		warns = append(warns, fmt.Sprintf("the role attributes of %s (%s) and %s (%s) differ", pend.Username, pf.Attrs, other, of.Attrs))
	}
	return warns, nil
}
