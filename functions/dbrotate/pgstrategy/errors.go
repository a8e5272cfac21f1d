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

// explanation is the class and the advice for one SQLSTATE.
type explanation struct {
	class rotation.Class
	why   string
}

// connectStates explain the SQLSTATEs of a failed login.
var connectStates = map[string]explanation{
	sqlInvalidPassword:  {rotation.ClassAuthentication, "the server refused the password (28P01): the secret does not match the database, or the role's VALID UNTIL has passed; compare the secret with the role and check pg_hba.conf"},
	sqlInvalidAuthSpec:  {rotation.ClassAuthentication, "the server refused the login (28000): the role may not exist, lack LOGIN, or pg_hba.conf has no entry for it"},
	sqlInvalidCatalog:   {rotation.ClassConfiguration, "the database does not exist (3D000): fix dbname in the secret"},
	sqlInsufficientPriv: {rotation.ClassPermission, "the role lacks CONNECT on the database (42501): GRANT CONNECT ON DATABASE to it"},
	sqlTooManyConns:     {rotation.ClassDependency, "the server is not accepting connections now (" + sqlTooManyConns + "); the rotation will be retried"},
	sqlCannotConnectNow: {rotation.ClassDependency, "the server is not accepting connections now (" + sqlCannotConnectNow + "); the rotation will be retried"},
}

// execStates explain the SQLSTATEs of a failed statement.
var execStates = map[string]explanation{
	sqlInsufficientPriv: {rotation.ClassPermission, "permission denied (42501): the admin role needs CREATEROLE (and ADMIN OPTION on the roles it manages, on PostgreSQL 16+); a single user may change only its own password"},
	sqlUndefinedObject:  {rotation.ClassConfiguration, "the role does not exist (42704): create it, or fix the secret"},
	sqlDuplicateObject:  {rotation.ClassState, "the role already exists (42710); the rotation will be retried"},
	sqlLockNotAvailable: {rotation.ClassDependency, "another invocation of this function is changing the same role right now (55P03, lock not available); the rotation will be retried"},
}

// classified reports an error that is a *rotation.Error already (the step's
// budget exhausted, an injected fault): it is passed on as it is.
func classified(err error) bool {
	var re *rotation.Error
	return errors.As(err, &re)
}

// explainer returns the constructor of op's classified errors for err: the
// message is "<doing>: <why>", the cause err.
func explainer(err error, op, doing string) func(rotation.Class, string) error {
	return func(c rotation.Class, why string) error {
		return rotation.NewError(c, op, doing+": "+why, err)
	}
}

// classifyConnect turns a connection failure into an actionable error. who
// says which credentials were used ("the AWSCURRENT user app"); target is
// host:port/db.
func classifyConnect(err error, who, target string) error {
	if classified(err) {
		return err
	}
	mk := explainer(err, "postgres:connect", fmt.Sprintf("connecting to %s as %s", target, who))
	if e, ok := connectStates[sqlState(err)]; ok {
		return mk(e.class, e.why)
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
	if classified(err) {
		return err
	}
	mk := explainer(err, "postgres:exec", what+" as "+who)
	if e, ok := execStates[sqlState(err)]; ok {
		return mk(e.class, e.why)
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
