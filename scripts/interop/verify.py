"""Verifies one of our access tokens as another service would, with PyJWT: the keys from the
issuer's JWKS URL (PyJWKClient, picked by the token's `kid`), ES256 only, `typ` at+jwt, issuer and
audience checked. Prints the claims as JSON, or the reason on stderr and exits 1.

usage: verify.py JWKS_URL ISSUER AUDIENCE TOKEN
"""

import json
import sys

import jwt


def verify(jwks_url: str, issuer: str, audience: str, token: str) -> dict:
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("typ is not at+jwt")
    key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["ES256"], issuer=issuer, audience=audience, leeway=5,
                        options={"require": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]})
    if claims.get("token_use") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims


if __name__ == "__main__":
    try:
        print(json.dumps(verify(*sys.argv[1:5])))
    except jwt.PyJWTError as e:
        sys.exit(f"refused: {type(e).__name__}: {e}")
