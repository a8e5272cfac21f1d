package pgstrategy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// SQLSTATE codes this package acts on.
const (
	sqlInvalidPassword  = "28P01"
	sqlInvalidAuthSpec  = "28000"
	sqlInsufficientPriv = "42501"
	sqlUndefinedObject  = "42704"
	sqlDuplicateObject  = "42710"
	sqlInvalidCatalog   = "3D000"
	sqlTooManyConns     = "53300"
	sqlCannotConnectNow = "57P03"
	sqlLockNotAvailable = "55P03"
)

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isAuthFailure reports a refused password (wrong or expired).
func isAuthFailure(err error) bool { return sqlState(err) == sqlInvalidPassword }

// classifyConnect turns a connection failure into an actionable error. who
// says which credentials were used ("the AWSCURRENT user app"); target is
// host:port/db.
func classifyConnect(err error, who, target string) error {
	var re *rotation.Error
	if errors.As(err, &re) {
		return err // already classified (budget exhausted, injected fault)
	}
	op := "postgres:connect"
	mk := func(c rotation.Class, msg string) error {
		return rotation.NewError(c, op, fmt.Sprintf("connecting to %s as %s: %s", target, who, msg), err)
	}
	switch sqlState(err) {
	case sqlInvalidPassword:
		return mk(rotation.ClassAuthentication, "the server refused the password (28P01): the secret does not match the database, or the role's VALID UNTIL has passed; compare the secret with the role and check pg_hba.conf")
	case sqlInvalidAuthSpec:
		return mk(rotation.ClassAuthentication, "the server refused the login (28000): the role may not exist, lack LOGIN, or pg_hba.conf has no entry for it")
	case sqlInvalidCatalog:
		return mk(rotation.ClassConfiguration, "the database does not exist (3D000): fix dbname in the secret")
	case sqlInsufficientPriv:
		return mk(rotation.ClassPermission, "the role lacks CONNECT on the database (42501): GRANT CONNECT ON DATABASE to it")
	case sqlTooManyConns, sqlCannotConnectNow:
		return mk(rotation.ClassDependency, "the server is not accepting connections now ("+sqlState(err)+"); the rotation will be retried")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return mk(rotation.ClassTimeout, "the connection did not complete within the step's time budget: check that the function can reach the database (VPC, security group) and that the host is right")
	}
	var ce *tls.CertificateVerificationError
	var he x509.HostnameError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	if errors.As(err, &he) {
		return mk(rotation.ClassTLS, "the server certificate is not valid for the host name: set sslservername in the secret to a name on the certificate, or fix host")
	}
	if errors.As(err, &ua) || errors.As(err, &ce) || errors.As(err, &ci) {
		return mk(rotation.ClassTLS, "the server certificate is not trusted: add its CA to sslrootcertpem in the secret or to "+EnvCABundleFile)
	}
	if errors.As(err, &rh) || errors.As(err, &ae) || strings.Contains(err.Error(), "server refused TLS") || strings.Contains(err.Error(), "tls:") {
		return mk(rotation.ClassTLS, "the TLS handshake failed: the server may not offer TLS (ssl=off) or speaks another protocol on this port; this function never falls back to plaintext")
	}
	if strings.Contains(err.Error(), "authentication method requirement") {
		return mk(rotation.ClassAuthentication, "the server asked for a password method other than SCRAM-SHA-256 (or md5 for application users), which this function refuses: set password_encryption = scram-sha-256 and use scram-sha-256 in pg_hba.conf")
	}
	if strings.Contains(err.Error(), "SCRAM") || strings.Contains(err.Error(), "server signature") {
		return mk(rotation.ClassAuthentication, "SCRAM authentication failed: the server could not prove it knows the password's verifier (wrong host, or the role's password was changed)")
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return mk(rotation.ClassNetwork, "the host name does not resolve: fix host in the secret or the VPC's DNS settings")
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return mk(rotation.ClassNetwork, "the server could not be reached (refused, reset or unroutable): check host and port in the secret, the security group and the route from the function's subnets")
	}
	return mk(rotation.ClassDependency, "the connection failed")
}

// classifyExec turns a failed statement into an actionable error. what says
// what the statement was for.
func classifyExec(err error, what, who string) error {
	var re *rotation.Error
	if errors.As(err, &re) {
		return err
	}
	op := "postgres:exec"
	mk := func(c rotation.Class, msg string) error {
		return rotation.NewError(c, op, fmt.Sprintf("%s as %s: %s", what, who, msg), err)
	}
	switch sqlState(err) {
	case sqlInsufficientPriv:
		return mk(rotation.ClassPermission, "permission denied (42501): the admin role needs CREATEROLE (and ADMIN OPTION on the roles it manages, on PostgreSQL 16+); a single user may change only its own password")
	case sqlUndefinedObject:
		return mk(rotation.ClassConfiguration, "the role does not exist (42704): create it, or fix the secret")
	case sqlDuplicateObject:
		return mk(rotation.ClassState, "the role already exists (42710); the rotation will be retried")
	case sqlLockNotAvailable:
		return mk(rotation.ClassDependency, "another invocation of this function is changing the same role right now (55P03, lock not available); the rotation will be retried")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return mk(rotation.ClassTimeout, "the statement did not finish within the step's time budget")
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return mk(rotation.ClassNetwork, "the connection broke")
	}
	return mk(rotation.ClassDependency, "the statement failed")
}
