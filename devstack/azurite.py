"""Start and stop Azurite (the official Azure Storage emulator, installed by `npm ci`) on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
# Azurite's well-known development account; it is public and only ever valid against the emulator.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)")


@dataclass(frozen=True)
class AzuriteEndpoints:
    blob: str
    queue: str
    table: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob}/{ACCOUNT};QueueEndpoint={self.queue}/{ACCOUNT};TableEndpoint={self.table}/{ACCOUNT};"
        )


class Azurite:
    """Azurite in memory, each service on a port the OS picks (read back from Azurite's own output)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._process: subprocess.Popen[str] | None = None
        self._workdir: str | None = None
        self.endpoints: AzuriteEndpoints | None = None

    def start(self, timeout: float = 30.0) -> AzuriteEndpoints:
        executable = ROOT / "node_modules" / ".bin" / "azurite"
        if not executable.exists():
            raise RuntimeError(f"{executable} is missing: run `npm ci` in {ROOT}")
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        args = [str(executable), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableProductStyleUrl"]
        args.append("--disableTelemetry")
        for service in ("blob", "queue", "table"):
            args += [f"--{service}Host", self.host, f"--{service}Port", "0"]
        self._process = subprocess.Popen(  # noqa: S603 - our own node_modules binary, fixed arguments
            args, cwd=self._workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        found: dict[str, str] = {}
        lines: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                lines.append(line)
                match = _LISTENING.search(line)
                if match:
                    found[match.group(1).lower()] = match.group(2).rstrip("/")
                    if len(found) == 3:
                        done.set()
            done.set()  # output ended: Azurite exited

        threading.Thread(target=read, name="azurite-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not done.wait(0.05):
            if time.monotonic() > deadline:
                break
        if len(found) != 3:
            self.stop()
            raise RuntimeError("Azurite did not start:\n" + "".join(lines[-20:]))
        self.endpoints = AzuriteEndpoints(found["blob"], found["queue"], found["table"])
        return self.endpoints

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, 9)
                self._process.wait()
        self._process = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> AzuriteEndpoints:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()
