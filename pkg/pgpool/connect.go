package pgpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// parsed is one secret version, read once: its credentials and the TLS
// settings they mean (nil: plaintext, allowed by Config.AllowPlaintext).
type parsed struct {
	cred *pgsecret.Secret
	tls  *tls.Config
}

// credentialsOf reads a secret version with pkg/pgsecret, exactly as dbrotate
// reads it: the fields of AWS's PostgreSQL templates and the TLS settings
// (sslmode, sslservername, sslrootcertpem, sslrootcertonly), trusting the
// system roots plus Config.CABundlePEM. Errors name fields, never values.
func (p *Pool) credentialsOf(v *secretcache.Value) (*parsed, error) {
	p.parsedMu.Lock()
	defer p.parsedMu.Unlock()
	if pc, ok := p.parsed[v.VersionID]; ok {
		return pc, nil
	}
	cred, err := pgsecret.Parse("the secret", v.Bytes())
	if err != nil {
		return nil, fmt.Errorf("pgpool: %w (version %s of %s)", err, v.VersionID, p.cfg.SecretID)
	}
	tc, err := cred.TLSConfig(p.roots)
	switch {
	case errors.Is(err, pgsecret.ErrPlaintext):
		if !p.cfg.AllowPlaintext {
			return nil, errors.New("pgpool: the secret asks for sslmode=disable (no TLS); set Config.AllowPlaintext to accept it")
		}
	case err != nil:
		return nil, fmt.Errorf("pgpool: %w", err)
	}
	if len(p.parsed) > 16 {
		clear(p.parsed)
	}
	pc := &parsed{cred: cred, tls: tc}
	p.parsed[v.VersionID] = pc
	return pc, nil
}

func (p *Pool) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	v, forced := ctx.Value(forcedKey{}).(*secretcache.Value)
	if !forced {
		var err error
		if v, err = p.cfg.Cache.Get(ctx, p.cfg.SecretID); err != nil {
			return err
		}
		if o, ok := p.overrideFor(v.VersionID); ok {
			v = o
		}
	}
	pc, err := p.credentialsOf(v)
	if err != nil {
		return err
	}
	c := pc.cred
	cc.Host, cc.Port, cc.Database = c.Host, uint16(c.PortOrDefault()), c.DBNameOrDefault()
	cc.User, cc.Password = c.Username, c.Password
	cc.TLSConfig = pc.tls
	cc.Fallbacks = nil
	p.credVer.Store(digest(c.Username, c.Password), v.VersionID)
	return nil
}
