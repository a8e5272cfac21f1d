// Package redactcheck holds only a test: it finds, by parsing the module's
// source, every exported type in pkg/, functions/ and internal/ that can hold
// a secret, and proves that none of them shows the secret when printed with
// fmt, logged with log/slog, or encoded with encoding/json or MarshalText
// (stored documents may carry it in JSON, by an explicit allow-list). It has
// no production code.
package redactcheck
