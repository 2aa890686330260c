// Verifies one of our access tokens as another service would, with jose: the keys from the
// issuer's JWKS URL (createRemoteJWKSet, picked by the token's `kid`), ES256 only, typ at+jwt,
// issuer and audience checked. Prints the claims as JSON, or the reason on stderr and exits 1.
//
// usage: node verify.mjs JWKS_URL ISSUER AUDIENCE TOKEN
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, token] = process.argv.slice(2);
const keys = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload } = await jwtVerify(token, keys, {
    algorithms: ['ES256'], typ: 'at+jwt', issuer, audience, clockTolerance: 5,
    requiredClaims: ['iss', 'aud', 'sub', 'iat', 'nbf', 'exp', 'jti'],
  });
  if (payload.token_use !== 'access') throw new Error('not an access token');
  console.log(JSON.stringify(payload));
} catch (e) {
  console.error(`refused: ${e.code ?? e.name}: ${e.message}`);
  process.exitCode = 1;
}
