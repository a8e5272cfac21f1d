// @rotation-suite/client: read, in Node, every format the rotation suite
// writes — envelope blobs (v1), JWT keyrings and JWK Sets, API-key and
// webhook verifier records, database secrets — and follow their rotations.
export * from './errors.js';
export * from './envelope.js';
export * from './kms.js';
export * from './apikey.js';
export * from './verifier.js';
export * from './jwt.js';
export * from './cache.js';
export * from './db.js';
export * from './blindindex.js';
export * from './colmigrate.js';
