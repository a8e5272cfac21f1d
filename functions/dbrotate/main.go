// Command dbrotate is the Secrets Manager rotation function for PostgreSQL
// credentials (single user, or alternating users with an admin secret). It
// only wires: environment → pgstrategy strategy → shared engine → Lambda
// runtime. The strategy lives in ./pgstrategy; docs/dbrotate.md is the
// operator's guide.
package main

import (
	"context"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/fnmain"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func main() { fnmain.Run(build) }

func build(ctx context.Context, d fnmain.Deps) (rotation.Strategy, error) {
	cfg, err := pgstrategy.ConfigFromEnv(d.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.Logger.Warn("configuration warning", "warning", w)
	}
	return pgstrategy.New(cfg, pgstrategy.Deps{Logger: d.Logger})
}
