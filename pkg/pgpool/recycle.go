package pgpool

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// upToDate reports whether c was opened with the credentials in use now.
func (p *Pool) upToDate(c *pgx.Conn) bool {
	cur, ok := p.cfg.Cache.Peek(p.cfg.SecretID)
	if !ok {
		return true
	}
	ver, ok := p.connVer.Load(c)
	if !ok {
		return true
	}
	if ver == cur.VersionID {
		return true
	}
	o, ok := p.overrideFor(cur.VersionID)
	return ok && ver == o.VersionID
}

func (p *Pool) recycleLoop() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.RecycleCheck)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RecycleCheck)
		_, _ = p.cfg.Cache.Get(ctx, p.cfg.SecretID) // a hit; starts the background refresh when due
		for _, c := range p.Pool.AcquireAllIdle(ctx) {
			if !p.upToDate(c.Conn()) {
				_ = c.Conn().Close(ctx) // Release then destroys it
			}
			c.Release()
		}
		cancel()
	}
}
