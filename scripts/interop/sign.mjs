// Signs an access token with jose as our token function does: ES256 with a P-256 private key
// (PKCS#8 PEM) under its `kid`, header typ at+jwt, our claim set. Prints the token.
// ALG HS256 uses the key file's bytes as an HMAC secret instead (what an attacker holding only
// public key material would try); TYP changes the header's type.
//
// usage: node sign.mjs KEY_FILE KID ISSUER AUDIENCE SUB USERNAME SID [ALG [TYP]]
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, importPKCS8 } from 'jose';

const [keyFile, kid, issuer, audience, sub, username, sid, alg = 'ES256', typ = 'at+jwt'] = process.argv.slice(2);
const key = alg === 'HS256' ? readFileSync(keyFile) : await importPKCS8(readFileSync(keyFile, 'utf8'), alg);
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ username, token_use: 'access', epoch: 0, sid })
  .setProtectedHeader({ alg, typ, kid })
  .setIssuer(issuer).setAudience(audience).setSubject(sub)
  .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).setJti(randomUUID())
  .sign(key);
console.log(token);
