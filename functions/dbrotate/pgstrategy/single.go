package pgstrategy

import (
	"context"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// setSingle: the user changes its own password. It logs in with AWSCURRENT;
// if the database refuses that password it tries AWSPENDING (a retried
// setSecret: already done) and then every other stored version of the
// secret that still has a value, newest first (see findLive): the database
// may be at AWSPREVIOUS's password, or at the password of a failed rotation
// whose AWSPENDING an operator removed, which no label points at any more.
func (s *Strategy) setSingle(ctx context.Context, req *rotation.SetRequest, ep endpoint, cur, pend *Secret, resp *rotation.SetResponse) error {
	who := "the AWSCURRENT user " + cur.Username
	conn, err := s.connect(ctx, ep, cur.Username, cur.Password, false, who)
	if err != nil && isAuthFailure(err) {
		pc, perr := s.connect(ctx, ep, pend.Username, pend.Password, false, "the AWSPENDING user "+pend.Username)
		if perr == nil {
			closeConn(pc)
			resp.Details["recovered"] = "the database already has the AWSPENDING password"
			s.log.InfoContext(ctx, "setSecret: the database already has the pending password", "user", pend.Username)
			return nil
		}
		if !isAuthFailure(perr) {
			return perr
		}
		tried := []string{"AWSCURRENT (" + req.Current.ID + ")", "AWSPENDING (" + req.Pending.ID + ")"}
		live, err := s.findLive(ctx, req.Store, ep, cur, []string{cur.Username}, map[string]bool{cur.Password: true, pend.Password: true}, tried, err)
		if err != nil {
			return err
		}
		resp.Details["recovered"] = live.what
		resp.Details["recoveredFrom"] = live.version.ID
		s.log.InfoContext(ctx, "setSecret: "+live.what, "user", cur.Username, "versionId", live.version.ID)
		conn = live.conn
	} else if err != nil {
		return err
	}
	defer closeConn(conn)
	v, err := s.verifierFor(pend.Username, pend.Password, false)
	if err != nil {
		return err
	}
	if err := dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.SetPassword(ctx, pend.Username, v, false) }); err != nil {
		return classifyExec(err, "changing the password of "+pend.Username, "itself")
	}
	return nil
}
