package explore_test

import (
	"testing"

	"github.com/rotation-suite/rotation/internal/contracttest"
)

// Every strategy keeps the one rotation contract (internal/contracttest),
// the same named rules for each.

func TestJWTKeepsTheRotationContract(t *testing.T)     { t.Parallel(); contracttest.Run(t, newJWT) }
func TestAPIKeyKeepsTheRotationContract(t *testing.T)  { t.Parallel(); contracttest.Run(t, newAPIKey) }
func TestWebhookKeepsTheRotationContract(t *testing.T) { t.Parallel(); contracttest.Run(t, newWebhook) }
func TestPostgresSingleUserKeepsTheRotationContract(t *testing.T) {
	t.Parallel()
	contracttest.Run(t, newPGSingle)
}
func TestPostgresAlternatingUsersKeepTheRotationContract(t *testing.T) {
	t.Parallel()
	contracttest.Run(t, newPGAlternating)
}
