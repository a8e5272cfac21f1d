// Package buildinfo owns the suite's version string: stamped at build time
// with -ldflags "-X github.com/rotation-suite/rotation/internal/buildinfo.version=v1.2.3"
// (the Makefile does it from `git describe`), else the module version that
// `go install …@v1.2.3` records, else "dev".
package buildinfo

import "runtime/debug"

// version is set by the linker; empty in a plain `go build`.
var version string

// Version is the version of the running binary.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
