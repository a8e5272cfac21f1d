package apikey

import (
	"fmt"
	"io"
)

// Format prints String for every verb. A Keyring holds webhook keys in
// unexported records that fmt would print (with %s or %q, through their
// pointers, with every method switched off), so it formats itself.
func (k Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }
