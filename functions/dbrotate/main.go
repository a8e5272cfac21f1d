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

func main() {
	fnmain.Run(func(_ context.Context, d fnmain.Deps) (rotation.Strategy, error) {
		cfg, err := pgstrategy.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return pgstrategy.New(cfg, d.Logger), nil
	})
}
