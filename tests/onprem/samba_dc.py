"""A real Active Directory domain controller for tests: Samba 4 (Debian's packages), on its own loopback address.

LDAP (389) and LDAPS (636) are fixed ports, so each DC binds its own 127.0.0.N (N in 2..250, claimed with a lock
file). Provisioning takes seconds, so a provisioned domain is cached as a template under
.devstack/samba-template/<samba version>-<hash of the provisioning inputs>/ and copied for each DC.

The template holds, besides the domain itself:
- OU=JIT Accounts, where the agent creates accounts;
- a service account (svc-jit-agent) with the rights docs/onprem-agent.md asks for: create/delete user objects in the
  OU, read/write properties and reset passwords of users in it, and write `member` of the allowed groups;
- a group whose CN needs escaping everywhere (SPECIAL_GROUP), allowed like Domain Admins.

Use from other tests (or run `python -m tests.onprem.samba_dc` to keep one running and print its settings):

    with SambaDC() as dc:
        dc.agent_ldap_settings()  # url, ca_file, tls_server_name, bind_dn, password, ou, allowed_groups
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ldap3.utils.dn import escape_rdn

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_ROOT = ROOT / ".devstack" / "samba-template"
INSTALL_COMMAND = (
    "apt-get install -y --no-install-recommends samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldb-tools"
    " (as root; or run scripts/setup as root)"
)

REALM = "JIT.TEST"
DOMAIN = "JIT"
HOST_NAME = "DC1"
BASE_DN = "DC=jit,DC=test"
ADMIN_PASSWORD = "Adm1n-Passw0rd!tests-only"  # a throwaway test domain on loopback
OU_NAME = "JIT Accounts"
OU_DN = f"OU={OU_NAME},{BASE_DN}"
SERVICE_ACCOUNT = "svc-jit-agent"
SERVICE_PASSWORD = "Svc-Passw0rd!tests-only"
SERVICE_DN = f"CN={SERVICE_ACCOUNT},CN=Users,{BASE_DN}"
SPECIAL_GROUP_SAM = "jit-ops-special"
# Every character RFC 4514 escapes in a DN or RFC 4515 in a filter, and a leading '#'.
SPECIAL_GROUP = '#Ops, "T0" <a+b> \\ ; = * ( )'
ALLOWED_GROUPS = ("Domain Admins", SPECIAL_GROUP)

# schemaIDGUIDs and control access rights from Microsoft's schema (MS-ADSC / MS-ADA1 / MS-ADTS 5.1.3.2.1):
_USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"  # user
_MEMBER_ATTRIBUTE = "bf9679c0-0de6-11d0-a285-00aa003049e2"  # member
_RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"  # User-Force-Change-Password
_PROVISION_VERSION = "3"  # bump when the template's content changes


def _ace_for_ou(sid: str) -> str:
    return (
        f"(OA;CI;CCDC;{_USER_CLASS};;{sid})"  # create and delete user objects in the OU
        f"(OA;CIIO;RPWP;;{_USER_CLASS};{sid})"  # read and write the properties of users in it
        f"(OA;CIIO;CR;{_RESET_PASSWORD};{_USER_CLASS};{sid})"  # reset their passwords
    )


def _ace_for_group(sid: str) -> str:
    return f"(OA;;WP;{_MEMBER_ATTRIBUTE};;{sid})"  # write `member` of the group, nothing else


class SambaUnavailable(RuntimeError):
    pass


def unavailable_reason() -> str | None:
    """Why a Samba DC cannot run here, or None when it can."""
    missing = [tool for tool in ("samba", "samba-tool") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed; install with: {INSTALL_COMMAND}"
    if os.geteuid() != 0:
        return f"a Samba AD DC must run as root (it binds ports 389/636); run the on-premises tests as root. {INSTALL_COMMAND}"
    return None


def samba_version() -> str:
    return subprocess.run(["samba", "--version"], check=True, capture_output=True, text=True).stdout.strip()


def _run(args: list[str], log: IO[str]) -> None:
    log.write("$ " + " ".join(args) + "\n")
    log.flush()
    result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise SambaUnavailable(f"{args[0]} {args[1:3]} failed with exit code {result.returncode}; see {log.name}")


def _smb_conf(workdir: Path, address: str) -> str:
    paths = {
        "pid directory": "run",
        "lock directory": "lock",
        "state directory": "state",
        "cache directory": "cache",
        "private dir": "private",
        "binddns dir": "bind-dns",
        "ncalrpc dir": "ncalrpc",
        "winbindd socket directory": "winbindd",
        "ntp signd socket directory": "ntp_signd",
    }
    lines = [
        "[global]",
        f"\tnetbios name = {HOST_NAME}",
        f"\trealm = {REALM}",
        f"\tworkgroup = {DOMAIN}",
        "\tserver role = active directory domain controller",
        # LDAP is all the tests need; no smbd, kdc, dns, rpc or drepl to start.
        "\tserver services = ldap",
        "\tdcerpc endpoint servers = ",
        # The address with its /8 mask: Samba accepts a host address inside a probed interface's network.
        f"\tinterfaces = {address}/8",
        "\tbind interfaces only = yes",
        # A reset password stops working at once (the default lets the old one work for 60 minutes over NTLM).
        "\told password allowed period = 0",
        f"\tlog file = {workdir / 'log' / 'samba.log'}",
        "\tlog level = 1",
    ]
    lines += [f"\t{key} = {workdir / value}" for key, value in paths.items()]
    for value in paths.values():
        (workdir / value).mkdir(parents=True, exist_ok=True)
    (workdir / "log").mkdir(exist_ok=True)
    return "\n".join(lines) + "\n"


def _provision_args(target: Path) -> list[str]:
    return [
        "samba-tool",
        "domain",
        "provision",
        "-s",
        "/dev/null",
        f"--targetdir={target}",
        "--server-role=dc",
        "--dns-backend=NONE",
        f"--realm={REALM}",
        f"--domain={DOMAIN}",
        f"--host-name={HOST_NAME}",
        f"--adminpass={ADMIN_PASSWORD}",
    ]


def _template_key() -> str:
    inputs = json.dumps(
        {
            "provision": _provision_args(Path("TARGET")),
            "ou": _ace_for_ou("SID"),
            "group": _ace_for_group("SID"),
            "special": SPECIAL_GROUP,
            "service": [SERVICE_ACCOUNT, SERVICE_PASSWORD],
            "version": _PROVISION_VERSION,
        },
        sort_keys=True,
    )
    version = samba_version().replace("Version ", "").replace(" ", "_")
    return f"{version}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"


def _build_template(target: Path) -> None:
    """Provision the domain and add the OU, service account, special group and delegations (all offline)."""
    target.mkdir(parents=True)
    with open(target / "provision.log", "w") as log:
        _run(_provision_args(target), log)
        conf = target / "smb.conf"
        conf.write_text(_smb_conf(target, "127.0.0.1"))
        db = ["-H", str(target / "private" / "sam.ldb"), "-s", str(conf)]
        _run(["samba-tool", "ou", "add", OU_DN, *db], log)
        _run(["samba-tool", "user", "add", SERVICE_ACCOUNT, SERVICE_PASSWORD, *db], log)
        _run(["samba-tool", "group", "add", SPECIAL_GROUP_SAM, *db], log)
        _run(["samba-tool", "group", "rename", SPECIAL_GROUP_SAM, f"--force-new-cn={escape_rdn(SPECIAL_GROUP)}", *db], log)
        sid = _sid_of(SERVICE_ACCOUNT, db)
        _run(["samba-tool", "dsacl", "set", f"--objectdn={OU_DN}", f"--sddl={_ace_for_ou(sid)}", *db], log)
        for group_dn in (f"CN=Domain Admins,CN=Users,{BASE_DN}", _group_dn(SPECIAL_GROUP_SAM, db)):
            _run(["samba-tool", "dsacl", "set", f"--objectdn={group_dn}", f"--sddl={_ace_for_group(sid)}", *db], log)


def _ldbsearch(db: list[str], expression: str, attribute: str) -> list[str]:
    result = subprocess.run(
        ["ldbsearch", "-H", db[1], expression, attribute],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.splitlines()


def _sid_of(sam: str, db: list[str]) -> str:
    for line in _ldbsearch(db, f"(sAMAccountName={sam})", "objectSid"):
        if line.startswith("objectSid: "):
            return line.split(": ", 1)[1].strip()
    raise SambaUnavailable(f"cannot read the SID of {sam}")


def _group_dn(sam: str, db: list[str]) -> str:
    # ldbsearch prints a DN with non-ASCII or special characters base64-encoded (dn:: ...); handle both.
    import base64

    for line in _ldbsearch(db, f"(sAMAccountName={sam})", "dn"):
        if line.startswith("dn:: "):
            return base64.b64decode(line[5:]).decode()
        if line.startswith("dn: "):
            return line[4:]
    raise SambaUnavailable(f"cannot read the DN of {sam}")


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def template_dir() -> tuple[Path, bool]:
    """The cached template (built under a lock if absent, so parallel workers build it once); (path, was_built)."""
    target = TEMPLATE_ROOT / _template_key()
    if (target / ".complete").exists():
        return target, False
    with _locked(TEMPLATE_ROOT / ".lock"):
        if (target / ".complete").exists():
            return target, False
        shutil.rmtree(target, ignore_errors=True)
        building = TEMPLATE_ROOT / f".building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        _build_template(building)
        # Paths inside the provisioned files point at the build directory; each DC writes its own smb.conf anyway.
        (building / ".complete").write_text("ok\n")
        building.rename(target)
        return target, True


class _AddressClaim:
    """Hold 127.0.0.N for this process: a lock file nobody else can take while we run, and both ports free."""

    def __init__(self) -> None:
        self.address = ""
        self._handle: IO[str] | None = None

    def claim(self) -> str:
        start = 2 + (os.getpid() % 249)
        for offset in range(249):
            n = 2 + (start - 2 + offset) % 249
            address = f"127.0.0.{n}"
            handle = open(Path(tempfile.gettempdir()) / f"jit-samba-{address}.lock", "w")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            if all(_port_free(address, port) for port in (389, 636, 3268, 3269)):
                self.address, self._handle = address, handle
                return address
            handle.close()
        raise SambaUnavailable("no free 127.0.0.N address (2..250) for a Samba DC")

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the test process dies without stopping us (no leaked DCs)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class SambaDC:
    """A running Samba AD DC copied from the template into a temporary directory of its own."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="samba-dc-"))
        self._claim = _AddressClaim()
        self._process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.template_built = False
        self.timings: dict[str, float] = {}

    # -- settings for the agent and for tests --
    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.address}:636"

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "private" / "tls" / "ca.pem")

    @property
    def tls_server_name(self) -> str:
        # Samba's self-signed certificate names the DC's FQDN; the tests reach it by IP and expect that name.
        return f"{HOST_NAME}.{REALM.lower()}"

    base_dn = BASE_DN
    ou_dn = OU_DN
    admin_dn = f"CN=Administrator,CN=Users,{BASE_DN}"
    admin_password = ADMIN_PASSWORD
    service_dn = SERVICE_DN
    service_password = SERVICE_PASSWORD
    allowed_groups = ALLOWED_GROUPS
    special_group = SPECIAL_GROUP

    def agent_ldap_settings(self) -> dict[str, Any]:
        """The [ldap] section of an agent config that uses this DC with the delegated service account."""
        return {
            "url": self.ldaps_url,
            "ca_file": self.ca_file,
            "tls_server_name": self.tls_server_name,
            "bind_dn": self.service_dn,
            "ou": self.ou_dn,
            "allowed_groups": list(self.allowed_groups),
            "timeout": 5.0,
        }

    # -- lifecycle --
    def start(self, timeout: float = 60.0) -> SambaDC:
        reason = unavailable_reason()
        if reason:
            raise SambaUnavailable(reason)
        began = time.monotonic()
        if not (self.workdir / "private").exists():
            template, self.template_built = template_dir()
            self.timings["template"] = time.monotonic() - began
            copied = time.monotonic()
            shutil.copytree(template / "private", self.workdir / "private", symlinks=True)
            self.timings["copy"] = time.monotonic() - copied
        if not self.address:
            self.address = self._claim.claim()
        conf = self.workdir / "smb.conf"
        conf.write_text(_smb_conf(self.workdir, self.address))
        log = open(self.workdir / "log" / "samba.out", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            ["samba", "-F", "-M", "single", "--debug-stdout", "-s", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() ends every child it forks
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._wait_ready(began + timeout)
        self.timings["start"] = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        last = "not started"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SambaUnavailable(f"samba exited with {self._process.returncode}; see {self.workdir / 'log'}")
            if Path(self.ca_file).exists():
                try:
                    context = ssl.create_default_context(cafile=self.ca_file)
                    with (
                        socket.create_connection((self.address, 636), timeout=1) as raw,
                        context.wrap_socket(raw, server_hostname=self.tls_server_name),
                    ):
                        return
                except (OSError, ssl.SSLError) as error:
                    last = str(error)
            time.sleep(0.1)
        self.stop()
        raise SambaUnavailable(f"Samba's LDAPS did not answer on {self.address}:636 in time ({last}); see {self.workdir / 'log'}")

    def stop(self) -> None:
        """Stop the DC (its whole process group); the data stays, so start() can bring it back."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        self.stop()
        self._claim.release()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SambaDC:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def main() -> None:
    """Run one DC until interrupted and print the settings an agent (in another process) needs."""
    with SambaDC() as dc:
        print(
            json.dumps(
                {"ldap": dc.agent_ldap_settings(), "service_password": dc.service_password, "timings": dc.timings}, indent=2
            )
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
