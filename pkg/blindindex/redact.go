package blindindex

import (
	"fmt"
	"io"
)

// Key and Index hold key material in unexported fields, where fmt calls no
// method of redact.Bytes: printing the struct itself (not a pointer, or a
// pointer with %s or %q) would show the bytes. Format prints String for
// every verb, for the value and the pointer alike.

// Format prints String for every verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// Format prints String for every verb.
func (x Index) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, x.String()) }
