"""The agent's wire protocol, password sealing and configuration (no directory needed)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import config as agent_config
from agent import protocol as p
from agent import sealing
from agent.directory import format_sid, random_password
from tests.onprem.conftest import ROOT_DIR

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def ensure_command(**overrides) -> p.Command:
    args = {
        "samAccountName": "jit-alice",
        "userPrincipalName": "jit-alice@corp.example",
        "displayName": "JIT Alice",
        "marker": "tenant/alice",
        "password": {"alg": "RSA-OAEP-256", "kid": "ab", "ct": "AAAA"},
    }
    fields = {
        "id": "cmd-1",
        "site": "hq",
        "op": p.OP_ENSURE_ACCOUNT,
        "args": args,
        "tenant_id": "t1",
        "grant_id": "g1",
    } | overrides
    return p.Command(**fields)


def test_command_round_trip_is_base64_json() -> None:
    command = ensure_command()
    text = p.encode_command(command)
    data = json.loads(base64.b64decode(text))
    assert set(data) == {"v", "id", "site", "tenantId", "grantId", "op", "args", "issuedAt"}
    assert data["v"] == 1 and data["op"] == "ensure_account" and data["grantId"] == "g1"
    assert p.decode_command(text) == command
    args = p.parse_args(command)
    assert isinstance(args, p.EnsureAccountArgs) and args.password.alg == "RSA-OAEP-256"
    assert command.partition_key == "g1"
    assert p.Command(id="c", site="hq", op=p.OP_LIST_GROUPS, args={}).partition_key == "site-hq"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d | {"v": 2}, p.E_UNSUPPORTED_VERSION),
        (lambda d: {k: v for k, v in d.items() if k != "v"}, p.E_UNSUPPORTED_VERSION),
        (lambda d: d | {"op": "drop_domain"}, p.E_UNKNOWN_OP),
        (lambda d: d | {"id": ""}, p.E_BAD_MESSAGE),
        (lambda d: d | {"id": "a/b"}, p.E_BAD_MESSAGE),
        (lambda d: d | {"grantId": "g#1"}, p.E_BAD_MESSAGE),
        (lambda d: d | {"site": "HQ"}, p.E_BAD_MESSAGE),
        (lambda d: d | {"issuedAt": "yesterday"}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": []}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": d["args"] | {"samAccountName": "a*b"}}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": d["args"] | {"samAccountName": "x" * 21}}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": d["args"] | {"displayName": "x" * 65}}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": d["args"] | {"password": "plain text"}}, p.E_BAD_MESSAGE),
        (lambda d: d | {"args": {k: v for k, v in d["args"].items() if k != "marker"}}, p.E_BAD_MESSAGE),
    ],
)
def test_poison_commands_are_refused_with_a_code(mutate, code) -> None:
    data = mutate(ensure_command().to_json())
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_command(base64.b64encode(json.dumps(data).encode()).decode())
    assert refused.value.code == code


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1]").decode(), ""])
def test_undecodable_messages(text: str) -> None:
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_command(text)
    assert refused.value.code == p.E_BAD_MESSAGE


def test_result_entity_round_trip_and_large_results_are_split() -> None:
    big = {"accounts": [{"dn": f"CN=user {i},OU=JIT,DC=corp", "memberOf": ["CN=Domain Admins"] * 3} for i in range(1500)]}
    result = p.Result(partition_key="g1", command_id="c1", ok=True, result=big, op="marked_accounts", site="hq", attempt=2)
    entity = p.result_to_entity(result)
    assert entity["resultParts"] > 1 and all(
        len(v) <= 30_000 for k, v in entity.items() if k.startswith("result") and isinstance(v, str)
    )
    back = p.result_from_entity(entity)
    assert back.result == big and back.ok and back.attempt == 2 and back.final

    failed = p.Result(
        partition_key="g1", command_id="c2", ok=False, error=p.ErrorInfo(p.E_LDAP_UNAVAILABLE, "down", transient=True)
    )
    entity = p.result_to_entity(failed)
    assert json.loads(entity["error"]) == {"code": "ldap_unavailable", "message": "down", "transient": True}
    assert entity["errorCode"] == "ldap_unavailable" and not p.result_from_entity(entity).final
    with pytest.raises(ValueError):
        p.result_to_entity(p.Result(partition_key="g", command_id="c", ok=True, result={"x": "y" * 500_000}))


def test_protocol_module_needs_only_the_standard_library() -> None:
    """The function app imports agent.protocol without ldap3 or the Azure SDKs."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('ldap3', 'azure', 'cryptography', 'pyasn1'): raise ImportError(name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import agent.protocol\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# ---- sealing ---------------------------------------------------------------------------------------------------


def test_sealed_password_opens_only_with_the_agents_key() -> None:
    key, other = sealing.generate_private_key(), sealing.generate_private_key()
    sealed = sealing.seal_for_agent(sealing.public_pem(key), "Otp-ÄÖ-1234!")
    assert set(sealed) == {"alg", "kid", "ct"} and sealed["alg"] == "RSA-OAEP-256"
    assert "Otp" not in json.dumps(sealed)
    assert sealing.open_sealed(key, sealed) == "Otp-ÄÖ-1234!"
    assert sealing.seal_for_agent(sealing.public_pem(key), "Otp-ÄÖ-1234!")["ct"] != sealed["ct"]  # randomised padding
    with pytest.raises(sealing.SealingError):
        sealing.open_sealed(other, sealed)  # another key (kid differs)
    with pytest.raises(sealing.SealingError):
        sealing.open_sealed(other, sealed | {"kid": sealing.key_id(other.public_key())})  # even claiming its kid
    tampered = bytearray(base64.b64decode(sealed["ct"]))
    tampered[10] ^= 1
    with pytest.raises(sealing.SealingError):
        sealing.open_sealed(key, sealed | {"ct": base64.b64encode(bytes(tampered)).decode()})
    with pytest.raises(sealing.SealingError):
        sealing.open_sealed(key, sealed | {"alg": "RSA1_5"})


def test_weak_or_non_rsa_keys_are_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    curve = ec.generate_private_key(ec.SECP256R1())
    for key in (small, curve):
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(sealing.SealingError):
            sealing.seal_for_agent(pem, "x")


def test_private_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "agent.pem"
    first = sealing.load_or_create_private_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = sealing.load_or_create_private_key(path)
    assert sealing.key_id(first.public_key()) == sealing.key_id(again.public_key())


def test_random_password_meets_complexity_and_never_repeats() -> None:
    passwords = {random_password() for _ in range(50)}
    assert len(passwords) == 50
    for pw in passwords:
        assert len(pw) == 32 and any(c.isupper() for c in pw) and any(c.islower() for c in pw) and any(c.isdigit() for c in pw)


def test_format_sid() -> None:
    raw = bytes([1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0]) + (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    raw += (3).to_bytes(4, "little") + (512).to_bytes(4, "little")
    assert format_sid(raw) == "S-1-5-21-1-2-3-512"


# ---- configuration ---------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    (tmp_path / "pw").write_text("s3cret\n")
    path = tmp_path / name
    path.write_text(text)
    return path


BASE_TOML = """
site = "hq"
private_key_file = "agent-key.pem"
[storage]
queue_endpoint = "https://acct.queue.core.windows.net"
table_endpoint = "https://acct.table.core.windows.net"
credential = "managed_identity"
[ldap]
url = "ldaps://dc1.corp.example:636"
ca_file = "ca.pem"
bind_dn = "CN=svc-jit,OU=Service,DC=corp,DC=example"
password_file = "pw"
ou = "OU=JIT,DC=corp,DC=example"
"""


def test_config_file_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    settings = agent_config.load(write_config(tmp_path, BASE_TOML), environ={})
    assert settings.site == "hq" and settings.table_prefix == "Jit" and settings.poll_interval == 5.0
    assert settings.ldap.allowed_groups == ("Domain Admins",) and settings.ldap.password == "s3cret"
    assert settings.ldap.ca_file == str(tmp_path / "ca.pem") and settings.private_key_file == str(tmp_path / "agent-key.pem")
    assert "s3cret" not in repr(settings)


def test_environment_overrides_and_json_config(tmp_path: Path) -> None:
    data = {"site": "hq", "private_key_file": "k.pem", "storage": {"connection_string": AZURITE}}
    data["ldap"] = {"url": "ldaps://dc1:636", "ca_file": "ca.pem", "bind_dn": "CN=svc", "ou": "OU=JIT"}
    path = write_config(tmp_path, json.dumps(data), name="agent.json")
    env = {
        "JIT_AGENT_SITE": "branch-2",
        "JIT_AGENT_LDAP_PASSWORD": "from-env",
        "JIT_AGENT_LDAP_ALLOWED_GROUPS": '["Domain Admins", "Tier0, Ops"]',
        "JIT_AGENT_POLL_INTERVAL": "1.5",
    }
    settings = agent_config.load(path, environ=env)
    assert settings.site == "branch-2" and settings.ldap.password == "from-env" and settings.poll_interval == 1.5
    assert settings.ldap.allowed_groups == ("Domain Admins", "Tier0, Ops")
    assert settings.storage.connection_string == AZURITE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('password_file = "pw"', 'password = "inline"'), "may not be in the file"),
        (lambda t: t.replace('password_file = "pw"\n', ""), "bind password is required"),
        (lambda t: t.replace("ldaps://", "ldap://"), "ldaps://"),
        (lambda t: t.replace('site = "hq"', 'site = "Head Office"'), "site name"),
        (lambda t: t.replace('credential = "managed_identity"', 'credential = "account_key"'), "credential must be"),
        (lambda t: t.replace('credential = "managed_identity"', 'credential = "certificate"'), "certificate needs"),
        (lambda t: t.replace("https://acct.queue", "http://acct.queue"), "must be https"),
        (
            lambda t: t.replace(
                "[storage]", '[storage]\nconnection_string = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5"'
            ),
            "Azurite only",
        ),
        (lambda t: t + 'colour = "blue"\n', "unknown configuration keys: ldap.colour"),
        (lambda t: t.replace('ou = "OU=JIT,DC=corp,DC=example"\n', ""), "ldap.ou is required"),
    ],
)
def test_config_refusals(tmp_path: Path, change, message: str) -> None:
    path = write_config(tmp_path, change(BASE_TOML))
    with pytest.raises(agent_config.ConfigError, match=message.replace("(", r"\(")):
        agent_config.load(path, environ={})


def test_certificate_credential_config(tmp_path: Path) -> None:
    text = BASE_TOML.replace(
        'credential = "managed_identity"',
        'credential = "certificate"\ntenant_id = "t"\nclient_id = "c"\ncertificate_file = "agent.pem"',
    )
    settings = agent_config.load(write_config(tmp_path, text), environ={})
    from azure.identity import CertificateCredential

    from agent.storage import credential_for

    (tmp_path / "agent.pem").write_text(_cert_pem())
    assert isinstance(credential_for(settings), CertificateCredential)


def _cert_pem() -> str:
    from cryptography.hazmat.primitives import serialization

    from tests.onprem.test_directory import _self_signed_ca

    key = sealing.generate_private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return pem + _self_signed_ca(key)


def test_agent_pins_match_the_project_pins() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if "==" in line)

    project, agent = pins(ROOT_DIR / "requirements.txt"), pins(ROOT_DIR / "agent" / "requirements.txt")
    assert agent["ldap3"] == "2.9.1"
    shared = set(project) & set(agent)
    assert {"azure-storage-queue", "azure-data-tables", "azure-identity", "cryptography"} <= shared
    assert {name: agent[name] for name in shared} == {name: project[name] for name in shared}


def test_heartbeat_entity_round_trip() -> None:
    beat = p.Heartbeat("hq", datetime.now(UTC), "0.1.0", "host", "PEM", "kid", "jit-ad-hq")
    entity = beat.to_entity()
    assert entity["PartitionKey"] == "agent" and entity["RowKey"] == "hq"
    assert p.Heartbeat.from_entity(entity) == beat
    assert p.queue_name("hq") == "jit-ad-hq" and p.results_table() == "JitAgentResults" and p.agents_table("X") == "XAgents"
    with pytest.raises(ValueError):
        p.queue_name("a--b")
