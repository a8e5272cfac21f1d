// Package apptest holds the application-side acceptance tests of the
// consumer libraries (pkg/envelope, pkg/jwks, pkg/apikey, pkg/secretcache,
// pkg/pgpool): how they behave for a service calling them under a request
// deadline, with a cold cache, while Secrets Manager is slow, and under a
// storm of refused credentials — against the local stack (moto behind
// internal/wirecount's counting proxy). It has no non-test code.
package apptest
