package pgpool

import (
	"fmt"
	"io"
)

// Format describes the pool for every verb. A Pool holds secret values (the
// credentials it logs in with, the AWSPENDING values it falls back on) in
// unexported fields that fmt would print with %s or %q, so it formats
// itself; it holds locks and is used through a pointer.
func (p *Pool) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "pgpool.Pool{secret:"+p.cfg.SecretID+"}")
}
