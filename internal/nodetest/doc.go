// Package nodetest runs the Node client's tests (clients/node) from go test
// and is the Go side of their interop: it installs the package with npm ci
// (cached while node_modules matches the lockfile), builds it with tsc,
// hands the Node tests the Go known-answer vectors and the local stack's
// endpoints, and checks in Go what Node produced (webhook signatures,
// envelopes, JWTs). A missing Node or npm fails under CI with the install
// command, as internal/testenv does for the other servers. It owns no
// product logic.
package nodetest
