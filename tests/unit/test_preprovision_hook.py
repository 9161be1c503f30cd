"""infra/hooks/preprovision.sh keeps the TAP and audit keys of an azd environment right: generated once, read back from
Key Vault, never silently replaced. Run with stand-ins for `azd` (records `azd env set`) and `az` (a vault in a
folder), the only commands it calls besides coreutils.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / "infra" / "hooks" / "preprovision.sh"
VAULT = "kv-jit-example"

FAKE_AZD = """#!/bin/sh
# azd env set NAME VALUE: remembered in $FAKE_AZD_LOG.
[ "$1 $2" = "env set" ] || exit 2
printf '%s=%s\\n' "$3" "$4" >> "$FAKE_AZD_LOG"
"""

# az keyvault secret list|show, as the hook calls them, against files in $FAKE_VAULT_DIR; FAKE_VAULT_DENY refuses.
FAKE_AZ = """#!/bin/sh
[ -z "${FAKE_VAULT_DENY:-}" ] || { echo "Forbidden" >&2; exit 1; }
[ "$1 $2" = "keyvault secret" ] || exit 2
vault="" name=""
action=$3; shift 3
while [ $# -gt 0 ]; do
  case "$1" in
    --vault-name) vault=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) shift ;;
  esac
done
[ "$vault" = "kv-jit-example" ] || { echo "vault not found" >&2; exit 1; }
case "$action" in
  list) for f in "$FAKE_VAULT_DIR"/*; do [ -f "$f" ] && echo "https://$vault.vault.azure.net/secrets/$(basename "$f")"; done; exit 0 ;;
  show) [ -f "$FAKE_VAULT_DIR/$name" ] || { echo "(SecretNotFound)" >&2; exit 1; }; cat "$FAKE_VAULT_DIR/$name"; echo ;;
  *) exit 2 ;;
esac
"""


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class Run:
    code: int
    output: str
    set_values: dict[str, str]


Hook = Callable[..., Run]


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("azd", FAKE_AZD), ("az", FAKE_AZ)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    vault_dir = tmp_path / "vault"
    vault_dir.mkdir()
    log = tmp_path / "azd.log"
    sh = shutil.which("sh")
    assert sh

    def run(env: dict[str, str], vault: dict[str, str] | None = None, deny: bool = False) -> Run:
        for name, value in (vault or {}).items():
            (vault_dir / name).write_text(value)
        log.write_text("")
        full_env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "FAKE_AZD_LOG": str(log),
            "FAKE_VAULT_DIR": str(vault_dir),
            **({"FAKE_VAULT_DENY": "1"} if deny else {}),
            **env,
        }
        done = subprocess.run([sh, str(HOOK)], env=full_env, capture_output=True, text=True, timeout=30, check=False)
        values = dict(line.split("=", 1) for line in log.read_text().splitlines())
        return Run(done.returncode, done.stdout + done.stderr, values)

    return run


def assert_no_key_printed(run: Run, *keys: str) -> None:
    for key in (*keys, *run.set_values.values()):
        assert key not in run.output


def test_a_first_deployment_gets_two_new_random_keys(hook: Hook) -> None:
    run = hook({})
    assert run.code == 0, run.output
    assert set(run.set_values) == {"JIT_TAP_ENCRYPTION_KEY", "JIT_AUDIT_KEY"}
    for value in run.set_values.values():
        assert len(base64.b64decode(value, validate=True)) == 32
    assert run.set_values["JIT_TAP_ENCRYPTION_KEY"] != run.set_values["JIT_AUDIT_KEY"]
    assert_no_key_printed(run)


def test_a_fresh_machine_takes_both_keys_back_from_the_vault(hook: Hook) -> None:
    tap, audit = new_key(), new_key()
    run = hook({"AZURE_KEY_VAULT_NAME": VAULT}, vault={"jit-tap-encryption-key": tap, "jit-audit-key": audit})
    assert run.code == 0, run.output
    assert run.set_values == {"JIT_TAP_ENCRYPTION_KEY": tap, "JIT_AUDIT_KEY": audit}
    assert_no_key_printed(run, tap, audit)


def test_a_deployment_from_before_the_audit_key_keeps_its_tap_key_and_gets_an_audit_key(hook: Hook) -> None:
    tap = new_key()
    run = hook({"AZURE_KEY_VAULT_NAME": VAULT, "JIT_TAP_ENCRYPTION_KEY": tap}, vault={"jit-tap-encryption-key": tap})
    assert run.code == 0, run.output
    assert set(run.set_values) == {"JIT_AUDIT_KEY"}
    assert len(base64.b64decode(run.set_values["JIT_AUDIT_KEY"], validate=True)) == 32
    assert "holds no jit-audit-key yet" in run.output


def test_an_audit_key_that_is_not_the_vaults_stops_the_provision(hook: Hook) -> None:
    tap, audit, other = new_key(), new_key(), new_key()
    env = {"AZURE_KEY_VAULT_NAME": VAULT, "JIT_TAP_ENCRYPTION_KEY": tap, "JIT_AUDIT_KEY": other}
    run = hook(env, vault={"jit-tap-encryption-key": tap, "jit-audit-key": audit})
    assert run.code == 1
    assert "JIT_AUDIT_KEY in the azd environment is not the key in Key Vault" in run.output
    assert "JIT_AUDIT_ALLOW_NEW_KEY" in run.output
    assert run.set_values == {}
    assert_no_key_printed(run, tap, audit, other)


def test_a_rotation_from_the_vaults_key_goes_through(hook: Hook) -> None:
    tap, audit, new = new_key(), new_key(), new_key()
    env = {"AZURE_KEY_VAULT_NAME": VAULT, "JIT_TAP_ENCRYPTION_KEY": tap, "JIT_AUDIT_KEY": new, "JIT_AUDIT_KEY_PREVIOUS": audit}
    run = hook(env, vault={"jit-tap-encryption-key": tap, "jit-audit-key": audit})
    assert run.code == 0, run.output
    assert run.set_values == {}


def test_the_override_lets_a_different_key_through(hook: Hook) -> None:
    tap, other = new_key(), new_key()
    env = {"AZURE_KEY_VAULT_NAME": VAULT, "JIT_TAP_ENCRYPTION_KEY": other, "JIT_TAP_ALLOW_NEW_KEY": "true"}
    run = hook(env, vault={"jit-tap-encryption-key": tap, "jit-audit-key": new_key()})
    assert run.code == 0, run.output
    assert set(run.set_values) == {"JIT_AUDIT_KEY"}  # read back; the TAP key stays the one given


def test_a_vault_that_cannot_be_read_stops_the_provision_rather_than_making_a_new_key(hook: Hook) -> None:
    run = hook({"AZURE_KEY_VAULT_NAME": VAULT}, vault={"jit-tap-encryption-key": new_key()}, deny=True)
    assert run.code == 1
    assert "could not be read" in run.output
    assert run.set_values == {}


def test_a_malformed_key_is_refused(hook: Hook) -> None:
    run = hook({"JIT_AUDIT_KEY": "not-a-key"})
    assert run.code == 1
    assert "JIT_AUDIT_KEY in the azd environment is not 32 bytes in base64" in run.output
