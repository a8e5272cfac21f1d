package pgfixture

import (
	"fmt"
	"io"
	"strconv"
)

// Format describes the fleet for every verb: with %s or %q fmt would print
// the *testenv.Postgres it holds, superuser password included, with its
// methods switched off.
func (f Fleet) Format(s fmt.State, _ rune) {
	_, _ = io.WriteString(s, "pgfixture.Fleet{"+f.Prefix+" secrets:"+strconv.Itoa(len(f.SecretARNs))+"}")
}
