"""Signs an access token with PyJWT as our token function does: ES256 with a P-256 private key
(PKCS#8 PEM) under its `kid`, header `typ` at+jwt, our claim set. Prints the token.
`--alg HS256` uses the key file's bytes as an HMAC secret instead (what an attacker holding only
public key material would try); `--typ` changes the header's type.

usage: sign.py KEY_FILE KID ISSUER AUDIENCE SUB USERNAME SID [--alg ES256] [--typ at+jwt] [--ttl 300]
"""

import argparse
import time
import uuid

import jwt

parser = argparse.ArgumentParser()
for name in ["key_file", "kid", "issuer", "audience", "sub", "username", "sid"]:
    parser.add_argument(name)
parser.add_argument("--alg", default="ES256")
parser.add_argument("--typ", default="at+jwt")
parser.add_argument("--ttl", type=int, default=300)
args = parser.parse_args()

with open(args.key_file, "rb") as f:
    key = f.read()
now = int(time.time())
claims = {"iss": args.issuer, "aud": args.audience, "sub": args.sub, "username": args.username,
          "iat": now, "nbf": now, "exp": now + args.ttl, "jti": str(uuid.uuid4()), "token_use": "access",
          "epoch": 0, "sid": args.sid}
print(jwt.encode(claims, key, algorithm=args.alg, headers={"kid": args.kid, "typ": args.typ}))
