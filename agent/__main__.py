"""`python -m agent --config agent.toml`: run the on-premises AD agent until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from agent import __version__, config, sealing, storage
from agent.directory import Directory
from agent.worker import Agent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent", description="JIT on-premises Active Directory agent")
    parser.add_argument("--config", type=Path, help="TOML or JSON config file (default: $JIT_AGENT_CONFIG)")
    parser.add_argument("--print-public-key", action="store_true", help="print the agent's public key (PEM) and exit")
    parser.add_argument("--version", action="version", version=__version__)
    options = parser.parse_args(argv)
    try:
        settings = config.load(options.config)
    except (config.ConfigError, OSError) as error:
        print(f"agent: configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # The SDKs log request details at INFO; keep their noise (never secrets, but URLs and headers) out of the agent log.
    logging.getLogger("azure").setLevel(logging.WARNING)
    private_key = sealing.load_or_create_private_key(Path(settings.private_key_file))
    if options.print_public_key:
        print(sealing.public_pem(private_key), end="")
        return 0
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("agent").info("signal %d: stopping after the current command", signum)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    clients = storage.connect(settings)
    try:
        Agent(settings, Directory(settings.ldap), clients, private_key).run(stop)
    finally:
        clients.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
