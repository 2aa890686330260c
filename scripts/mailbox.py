#!/usr/bin/env python3
"""The local mailbox: the mail the functions sent through SES to moto, printed as it arrives.

`./dev run` runs `scripts/mailbox.py watch URL` beside the functions: one block per message
(recipient, subject, the link it holds) on its output, so a link can be opened from there. moto
keeps every message; `/moto-api/data.json` lists them (`ses` `Message`). `scripts/mailbox.py
verify URL ADDRESS` verifies the sender identity first, as SES requires. Standard library only;
`./dev` stops the watcher with the other services.
"""

import json
import re
import sys
import time
import urllib.request


def messages(url):
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=5) as answer:
        data = json.load(answer)
    return data.get("ses", {}).get("Message", [])


def verify(url, address):
    """SES v2 CreateEmailIdentity, unsigned: moto does not check signatures."""
    request = urllib.request.Request(
        f"{url}/v2/email/identities",
        data=json.dumps({"EmailIdentity": address}).encode(),
        # moto tells services apart by the signature's scope; it does not check the signature.
        headers={
            "Content-Type": "application/json",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/ses/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()


def watch(url):
    seen = set()
    while True:
        try:
            for message in messages(url):
                if message["id"] in seen:
                    continue
                seen.add(message["id"])
                to = ", ".join(a for addresses in message.get("destinations", {}).values() for a in addresses)
                links = re.findall(r"https?://\S+", message.get("body", ""))
                print(f"\n  mail to {to}: {message.get('subject')}", flush=True)
                for link in links:
                    print(f"    {link}", flush=True)
        except OSError:
            pass
        time.sleep(0.5)


def main():
    command, url, *rest = sys.argv[1:]
    if command == "verify":
        verify(url, rest[0])
    elif command == "watch":
        watch(url)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
