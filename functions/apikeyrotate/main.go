// Command apikeyrotate is the Lambda function that rotates API keys and
// webhook signing keys with an overlap window. It is wiring only: the
// environment goes to apikeystrategy.ConfigFromEnv, the strategy is
// apikeystrategy.Strategy, and the shared engine runs it (internal/fnmain).
// See docs/apikey.md.
package main

import (
	"context"

	"github.com/rotation-suite/rotation/functions/apikeyrotate/apikeystrategy"
	"github.com/rotation-suite/rotation/internal/fnmain"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func main() { fnmain.Run(build) }

func build(ctx context.Context, d fnmain.Deps) (rotation.Strategy, error) {
	cfg, err := apikeystrategy.ConfigFromEnv(d.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.Logger.Warn("configuration warning", "warning", w)
	}
	return apikeystrategy.New(cfg, apikeystrategy.Deps{Logger: d.Logger})
}
