"""python -m devstack.oidc_issuer [--host 127.0.0.1] [--port 7081]: serve the local issuer until interrupted."""

from __future__ import annotations

import argparse
import sys
import threading

from .issuer import OidcIssuer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local OpenID Connect issuer shaped like Entra ID, for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7081)
    args = parser.parse_args(argv)
    issuer = OidcIssuer(args.host, args.port).start()
    print(f"local OpenID issuer at {issuer.issuer_for()}", file=sys.stderr)
    for name, value in issuer.identity_env().items():
        print(f"  {name}={value}", file=sys.stderr)
    for person in issuer.people:
        print(f"  {person.name} <{person.preferred_username}> {person.object_id} {', '.join(person.roles)}", file=sys.stderr)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        issuer.stop()


if __name__ == "__main__":
    main()
