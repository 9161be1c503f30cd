"""Infrastructure and code agree: every app setting the code reads is set by infra/ (or documented as optional), every
setting infra/ sets is read, and the deployment files are well formed.

No Bicep compiler is available to the tests, so infra/*.bicep is read as text: the app settings are the keys between
the `// app-settings:begin` and `// app-settings:end` markers of infra/resources.bicep. The settings the code reads are
found in the code itself (string literals naming settings in the settings modules, `%NAME%` binding expressions and
os.environ reads anywhere in jit/), so this keeps up as settings are added.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from jit.settings import GraphAuth, Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
RESOURCES_BICEP = INFRA / "resources.bicep"
MAIN_BICEP = INFRA / "main.bicep"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
# Modules whose string literals name the settings they read (jit/settings.py reads the JIT_AUTH_* ones through
# jit/identity/settings.py).
SETTINGS_MODULES = (ROOT / "jit" / "settings.py", ROOT / "jit" / "identity" / "settings.py")

# Read by the Functions host (or the platform), never by the code: allowed in infra/ without a reader.
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential": "identity-based host storage: use a managed identity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host's telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra-authenticated ingestion for that telemetry",
    "AzureWebJobsFeatureFlags": "host feature flags (not needed on Flex Consumption)",
}

# Read by the code but deliberately not set by infra/; each is explained in docs/deploy.md.
OPTIONAL_SETTINGS = {
    "AzureWebJobsStorage": "a connection string: shared-key access is disabled, the identity-based settings are used",
    "AzureWebJobsStorage__accountName": "the service URIs are set instead",
    "GRAPH_CLIENT_SECRET": "client_secret mode only; infra uses workload_identity",
    "GRAPH_CLIENT_CERTIFICATE_PATH": "client_certificate mode only",
    "GRAPH_AUTHORITY_HOST": "follows GRAPH_BASE_URL",
    "JIT_TAP_ENCRYPTION_KEY_PREVIOUS": "set by infra only during a key rotation",
    "JIT_AUDIT_KEY_PREVIOUS": "set by infra only after an audit key rotation",
}

# Being added by the notifications work: optional until infra/ sets them.
OPTIONAL_PREFIXES = ("JIT_NOTIFY_", "JIT_PSA_", "JIT_WEBHOOK_")

# Flex Consumption takes these from functionAppConfig (or does not support them): setting them breaks the app.
FLEX_REJECTED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
}

_SETTING_NAME = re.compile(r"^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|AzureWebJobs\w+)$")
_BINDING_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


# ----------------------------------------------------------------------------------------------------------------
# What the code reads


def _python_files() -> list[Path]:
    return [ROOT / "function_app.py", *sorted((ROOT / "jit").rglob("*.py"))]


def _environ_reads(tree: ast.AST) -> set[str]:
    """Names read through os.environ.get / os.getenv / os.environ[...]."""
    names: set[str] = set()
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner == "os" and node.func.attr == "getenv") or (owner == "os.environ" and node.func.attr == "get"):
                target = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            target = node.slice
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            names.add(target.value)
    return names


def code_settings() -> set[str]:
    names: set[str] = set()
    for module in SETTINGS_MODULES:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SETTING_NAME.match(node.value):
                names.add(node.value)
    for path in _python_files():
        tree = ast.parse(path.read_text())
        names |= _environ_reads(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(n for n in _BINDING_EXPRESSION.findall(node.value) if _SETTING_NAME.match(n))
    return names


def code_defaults() -> dict[str, str]:
    """Defaults the reader in jit/settings.py falls back to: reader.method("NAME", default, ...) or default=..."""
    defaults: dict[str, str] = {}
    for node in ast.walk(ast.parse((ROOT / "jit" / "settings.py").read_text())):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        name = node.args[0].value
        if not (isinstance(name, str) and _SETTING_NAME.match(name)):
            continue
        candidates = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "default")]
        for value in candidates:
            if isinstance(value, ast.Constant) and isinstance(value.value, str | int | bool):
                defaults[name] = str(value.value).lower() if isinstance(value.value, bool) else str(value.value)
    return defaults


# ----------------------------------------------------------------------------------------------------------------
# What infra/ sets


def _strip_comment(line: str) -> str:
    """The line without a // comment; `//` inside a 'string' (https://...) is not a comment."""
    in_string = False
    i = 0
    while i < len(line):
        char = line[i]
        if in_string and char == "\\":
            i += 2
            continue
        if char == "'":
            in_string = not in_string
        elif not in_string and line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def _code_only(text: str) -> str:
    """Bicep text without comments and string contents (for bracket balance)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    out = []
    for line in text.splitlines():
        line = _strip_comment(line)
        out.append(re.sub(r"'(?:[^'\\]|\\.)*'", "''", line))
    return "\n".join(out)


def app_settings_block() -> list[str]:
    text = RESOURCES_BICEP.read_text()
    match = re.search(r"// app-settings:begin\n(.*?)\n// app-settings:end", text, re.DOTALL)
    assert match, "infra/resources.bicep has no // app-settings:begin ... // app-settings:end block"
    return [_strip_comment(line).rstrip() for line in match.group(1).splitlines()]


def infra_settings() -> dict[str, str]:
    """Setting name -> the Bicep expression infra/ gives it."""
    settings: dict[str, str] = {}
    for line in app_settings_block():
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(\S.*)$", line)
        if match:
            name, expression = match.groups()
            assert name not in settings, f"{name} is set twice in the app settings block"
            settings[name] = expression.strip()
    return settings


def _bicep_literal(expression: str) -> str | None:
    match = re.fullmatch(r"'([^'\\$]*)'", expression)
    return match.group(1) if match else None


def _resolve(expression: str) -> str | None:
    """A literal, or a var/param of infra/*.bicep whose value or default is a literal; None otherwise."""
    literal = _bicep_literal(expression)
    if literal is not None or not re.fullmatch(r"[A-Za-z_]\w*", expression):
        return literal
    for path in sorted(INFRA.glob("*.bicep")):
        for line in path.read_text().splitlines():
            match = re.match(rf"^(?:var\s+{expression}|param\s+{expression}\s+\w+)\s*=\s*(.+?)\s*$", _strip_comment(line))
            if match:
                return _bicep_literal(match.group(1))
    return None


def infra_values() -> dict[str, str]:
    resolved = {name: _resolve(expression) for name, expression in infra_settings().items()}
    return {name: value for name, value in resolved.items() if value is not None}


def _is_optional(name: str) -> bool:
    return name in OPTIONAL_SETTINGS or name.startswith(OPTIONAL_PREFIXES)


# ----------------------------------------------------------------------------------------------------------------
# Settings agree


def test_the_code_reads_the_settings_this_test_expects_to_find() -> None:
    # A guard for the scanner itself: if these vanish, the scan broke, not the settings.
    found = code_settings()
    for name in (
        "JIT_TAP_ENCRYPTION_KEY",
        "JIT_TAP_ENCRYPTION_KEY_PREVIOUS",
        "GRAPH_CLIENT_ID",
        "AzureWebJobsStorage__clientId",
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__blobServiceUri",
        "JIT_WORK_QUEUE",
        "JIT_SWEEP_SCHEDULE",
        "JIT_DRIFT_SCHEDULE",
        "JIT_AUDIT_CHECKPOINT_SCHEDULE",
        "JIT_AUDIT_KEY",
        "JIT_AUDIT_KEY_PREVIOUS",
        "JIT_AUTH_CLIENT_ID",
        "JIT_AUTH_TENANT_IDS",
        "JIT_PORTAL_CLIENT_ID",
        "JIT_SERVICE_IDENTITY",
    ):
        assert name in found, name


def test_every_setting_the_code_reads_is_set_by_infra_or_documented_as_optional() -> None:
    missing = sorted(name for name in code_settings() - infra_settings().keys() if not _is_optional(name))
    assert not missing, f"read by the code but not set in infra/resources.bicep (nor listed as optional): {missing}"


def test_every_setting_infra_sets_is_read_by_the_code_or_the_host() -> None:
    unread = sorted(infra_settings().keys() - code_settings() - HOST_SETTINGS.keys())
    assert not unread, f"set by infra/resources.bicep but read by nothing: {unread}"


def test_the_optional_and_host_lists_are_current_and_documented() -> None:
    read = code_settings()
    stale = sorted(name for name in OPTIONAL_SETTINGS if name not in read)
    assert not stale, f"listed as optional but no longer read by the code: {stale}"
    doc = DEPLOY_DOC.read_text()
    undocumented = sorted(name for name in OPTIONAL_SETTINGS if f"`{name}`" not in doc)
    assert not undocumented, f"optional settings not explained in docs/deploy.md: {undocumented}"
    assert len(HOST_SETTINGS) <= 6, "keep the host-only allow-list small"
    assert not HOST_SETTINGS.keys() & read, "a host-only setting is read by the code: move it out of HOST_SETTINGS"


def test_triggers_bind_to_settings_infra_sets() -> None:
    # Without these, %JIT_WORK_QUEUE% / %JIT_SWEEP_SCHEDULE% / %JIT_DRIFT_SCHEDULE% do not resolve and nothing indexes.
    bindings: set[str] = set()
    for path in _python_files():
        bindings.update(n for n in _BINDING_EXPRESSION.findall(path.read_text()) if _SETTING_NAME.match(n))
    assert bindings, "no %NAME% binding expressions found in the code"
    values = infra_values()
    for name in sorted(bindings):
        assert name in values, f"{name} (a trigger binding) must be set to a literal in infra"
    schedules = sorted(name for name in bindings if name.endswith("_SCHEDULE"))
    assert {"JIT_SWEEP_SCHEDULE", "JIT_DRIFT_SCHEDULE", "JIT_AUDIT_CHECKPOINT_SCHEDULE"} <= set(schedules)
    for name in schedules:
        assert len(values[name].split()) == 6, f"{name} must be a six-field NCRONTAB expression"


def test_flex_consumption_settings_are_not_set() -> None:
    rejected = sorted(infra_settings().keys() & FLEX_REJECTED)
    assert not rejected, f"Flex Consumption takes these from functionAppConfig or rejects them: {rejected}"


def test_infra_values_are_the_codes_defaults() -> None:
    values = infra_values()
    differing = {
        name: (values[name], default) for name, default in code_defaults().items() if name in values and values[name] != default
    }
    assert not differing, f"infra value differs from the default in jit/settings.py (infra, code): {differing}"


# The settings infra sets only when people sign in with Entra ID (authClientId given): the identitySettings object.
IDENTITY_SETTINGS = {"JIT_AUTH_CLIENT_ID", "JIT_AUTH_AUDIENCES", "JIT_AUTH_TENANT_IDS", "JIT_AUTH_AUTHORITY"}


@pytest.mark.parametrize("sign_in", [True, False], ids=["with-sign-in", "function-keys-only"])
def test_infra_settings_are_valid_for_the_code(sign_in: bool) -> None:
    env = {name: value for name, value in infra_values().items()}
    # Values infra computes at deployment, as they look once deployed.
    key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    audit_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
    api_client_id = "33333333-3333-3333-3333-333333333333"
    tenant_id = "44444444-4444-4444-4444-444444444444"
    computed = {
        "AzureWebJobsStorage__clientId": "11111111-1111-1111-1111-111111111111",
        "AzureWebJobsStorage__blobServiceUri": "https://stjitexample.blob.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://stjitexample.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://stjitexample.table.core.windows.net",
        "GRAPH_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
        "GRAPH_MANAGED_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
        "JIT_TAP_ENCRYPTION_KEY": key,
        "JIT_AUDIT_KEY": audit_key,
        "JIT_PERMANENT_DELETE": "false",
        "JIT_PUBLIC_BASE_URL": "https://func-jit-example.azurewebsites.net",
    }
    set_by_infra = infra_settings()
    for name, value in computed.items():
        if name in set_by_infra:
            env.setdefault(name, value)
    # Sign-in: the azd values a deployment gives (the registrations' client ids, the audience the script prints), and
    # what Bicep computes (this subscription's tenant; environment().authentication.loginEndpoint ends with a slash).
    # Without authClientId, Bicep leaves the JIT_AUTH_* settings out altogether.
    assert set_by_infra.keys() >= IDENTITY_SETTINGS
    for name in IDENTITY_SETTINGS:
        env.pop(name, None)
    if sign_in:
        env.update(
            {
                "JIT_AUTH_CLIENT_ID": api_client_id,
                "JIT_AUTH_AUDIENCES": f"api://{api_client_id}",
                "JIT_AUTH_TENANT_IDS": tenant_id,
                "JIT_AUTH_AUTHORITY": "https://login.microsoftonline.com/",
                "JIT_PORTAL_CLIENT_ID": "55555555-5555-5555-5555-555555555555",
            }
        )
    settings = Settings.from_env(env)
    assert settings.graph.auth is GraphAuth.WORKLOAD_IDENTITY
    assert settings.graph.managed_identity_client_id == settings.storage.managed_identity_client_id
    assert settings.storage.connection_string is None
    assert settings.storage.blob_service_uri, "the audit checkpoints need the blob service URI"
    assert settings.tap_keys is not None
    assert settings.audit_keys is not None, "the app refuses to start without JIT_AUDIT_KEY"
    assert settings.graph.base_url == "https://graph.microsoft.com/v1.0"
    assert settings.service_roles == ("Jit.Requester",)
    assert settings.identity.enabled is sign_in
    if sign_in:
        assert settings.identity.tenant_ids == (tenant_id,)
        assert settings.identity.authority == "https://login.microsoftonline.com"
        assert f"api://{api_client_id}" in settings.identity.audiences
        assert settings.portal_client_id


@pytest.mark.parametrize(
    ("setting", "reference", "secret_resource", "secret_name"),
    [
        ("JIT_TAP_ENCRYPTION_KEY", "tapKeyReference", "tapKeySecret", "jit-tap-encryption-key"),
        ("JIT_AUDIT_KEY", "auditKeyReference", "auditKeySecret", "jit-audit-key"),
    ],
)
def test_key_vault_references_name_the_secrets_infra_creates(
    setting: str, reference: str, secret_resource: str, secret_name: str
) -> None:
    settings = infra_settings()
    text = RESOURCES_BICEP.read_text()
    assert settings[setting] == reference
    assert f"var {reference} = '@Microsoft.KeyVault(SecretUri=${{{secret_resource}.properties.secretUriWithVersion}})'" in text
    previous = f"{setting}_PREVIOUS"
    assert (
        f"@Microsoft.KeyVault(SecretUri=${{{secret_resource[:-6]}PreviousSecret.properties.secretUriWithVersion}})"
        in (settings[previous])
    )
    # The secret resources carry these names, and the preprovision hooks read the same secrets back from the vault.
    assert re.search(rf"resource {secret_resource} '[^']+' = \{{\s*parent: vault\s*name: '{secret_name}'", text)
    assert re.search(
        rf"resource {secret_resource[:-6]}PreviousSecret '[^']+' = if [^{{]*\{{\s*parent: vault\s*name: '{secret_name}-previous'",
        text,
    )
    for hook in ("preprovision.sh", "preprovision.ps1"):
        hook_text = (INFRA / "hooks" / hook).read_text()
        assert secret_name in hook_text and setting in hook_text and previous in hook_text


def test_people_sign_in_with_bearer_tokens_the_app_validates() -> None:
    # The app validates Entra ID tokens itself; the header App Service Authentication would add is trusted nowhere.
    for path in INFRA.glob("*.bicep"):
        assert "JIT_TRUST_CLIENT_PRINCIPAL" not in path.read_text(), f"{path.name} still sets JIT_TRUST_CLIENT_PRINCIPAL"
    settings = infra_settings()
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    wired = {
        "JIT_AUTH_CLIENT_ID": "authClientId",
        "JIT_AUTH_AUDIENCES": "authAudiences",
        "JIT_AUTH_TENANT_IDS": "authTenants",
        "JIT_AUTH_AUTHORITY": "authHost",
        "JIT_PORTAL_CLIENT_ID": "portalClientId",
        "JIT_SERVICE_IDENTITY": "serviceIdentity",
        "JIT_SERVICE_ROLES": "serviceRoles",
    }
    for setting, expression in wired.items():
        assert settings[setting] == expression, setting
    for parameter, variable in {
        "authClientId": "JIT_AUTH_CLIENT_ID",
        "authAudiences": "JIT_AUTH_AUDIENCES",
        "authTenantIds": "JIT_AUTH_TENANT_IDS",
        "authAuthority": "JIT_AUTH_AUTHORITY",
        "portalClientId": "JIT_PORTAL_CLIENT_ID",
        "serviceIdentity": "JIT_SERVICE_IDENTITY",
        "serviceRoles": "JIT_SERVICE_ROLES",
    }.items():
        assert parameters[parameter]["value"].startswith(f"${{{variable}="), parameter
    raw = RESOURCES_BICEP.read_text()
    # JIT_AUTH_* go together or not at all (the code refuses them without a client id); defaults follow the deployment.
    assert "var identitySettings = empty(authClientId) ? {} : {" in raw
    assert "var authTenants = empty(authTenantIds) ? tenant().tenantId : authTenantIds" in raw
    assert "var authHost = empty(authAuthority) ? environment().authentication.loginEndpoint : authAuthority" in raw
    # Machines keep the least role unless the deployment says otherwise.
    assert _resolve("serviceRoles") == "Jit.Requester"


def test_audit_checkpoints_are_write_once() -> None:
    raw = RESOURCES_BICEP.read_text()
    settings = infra_settings()
    # The container is the one the code writes to: named from the same table prefix, as Settings names it.
    assert settings["JIT_TABLE_PREFIX"] == "tablePrefix"
    prefix = _resolve("tablePrefix")
    assert prefix
    expected = Settings.from_env({"JIT_TABLE_PREFIX": prefix, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert "var auditCheckpointContainerName = '${toLower(tablePrefix)}-audit-checkpoints'" in raw
    assert expected.checkpoint_container == f"{prefix.lower()}-audit-checkpoints"
    container = re.search(
        r"resource (\w+) 'Microsoft\.Storage/storageAccounts/blobServices/containers@[\w-]+' = \{\s*"
        r"parent: blobService\s*name: auditCheckpointContainerName\s*properties: \{\s*publicAccess: 'None'",
        raw,
    )
    assert container, "no checkpoint container"
    # A container-level time-based retention policy, deployed while unlocked; no appends to protected blobs.
    policy = re.search(
        r"resource \w+ 'Microsoft\.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@[\w-]+' = "
        rf"if \(!auditCheckpointPolicyLocked\) \{{\s*parent: {container.group(1)}\s*name: 'default'\s*properties: \{{"
        r"(?P<properties>[^}]*)\}",
        raw,
    )
    assert policy, "no immutability policy on the checkpoint container"
    assert "immutabilityPeriodSinceCreationInDays: auditCheckpointRetentionDays" in policy.group("properties")
    assert "allowProtectedAppendWrites: false" in policy.group("properties")
    main = MAIN_BICEP.read_text()
    assert re.search(
        r"@minValue\(1\)\n@maxValue\(146000\)\n@description\('[^\n]*'\)\nparam auditCheckpointRetentionDays int = \d+", main
    )
    assert "param auditCheckpointPolicyLocked bool = false" in main
    # The app reaches blobs with its identity (the Functions host needs Storage Blob Data Owner anyway, a superset
    # of Contributor): test_the_identity_and_the_deployer_get_the_data_roles checks the assignment.
    assert settings["AzureWebJobsStorage__blobServiceUri"].startswith("'https://${storage.name}.blob.")


# ----------------------------------------------------------------------------------------------------------------
# Bicep, read as text


@pytest.mark.parametrize("path", sorted(INFRA.glob("*.bicep")), ids=lambda p: p.name)
def test_bicep_brackets_balance(path: Path) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    for number, line in enumerate(_code_only(path.read_text()).splitlines(), 1):
        for char in line:
            if char in "([{":
                stack.append((char, number))
            elif char in pairs:
                assert stack and stack[-1][0] == pairs[char], f"{path.name}:{number}: unbalanced {char!r}"
                stack.pop()
    assert not stack, f"{path.name}: unclosed {stack[-1][0]!r} from line {stack[-1][1]}"


def test_flex_consumption_function_app_shape() -> None:
    text = _code_only(RESOURCES_BICEP.read_text()).replace("''", "")
    raw = RESOURCES_BICEP.read_text()
    assert "name: 'FC1'" in raw and "tier: 'FlexConsumption'" in raw
    assert re.search(r"kind: 'functionapp'\n\s*sku:", raw)
    assert "reserved: true" in text
    assert re.search(r"runtime: \{\s*name: 'python'\s*version: '3.11'\s*\}", raw)
    assert "type: 'UserAssignedIdentity'" in raw and "userAssignedIdentityResourceId: identity.id" in raw
    assert "scaleAndConcurrency" in raw
    assert "allowSharedKeyAccess: false" in raw
    assert "enableRbacAuthorization: true" in raw
    assert "keyVaultReferenceIdentity: identity.id" in raw
    assert "'azd-service-name': 'api'" in raw
    assert "DisableLocalAuth: true" in raw


def test_the_identity_and_the_deployer_get_the_data_roles() -> None:
    raw = RESOURCES_BICEP.read_text()
    role_ids = {
        "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
        "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    }
    assignments = re.findall(
        r"roleDefinitionId: subscriptionResourceId\('Microsoft.Authorization/roleDefinitions', roles\.(\w+)\)\s*"
        r"principalId: (\S+)",
        raw,
    )
    for role, role_id in role_ids.items():
        assert f"{role}: '{role_id}'" in raw
        assert (role, "identity.properties.principalId") in assignments, f"the app's identity lacks {role}"
    for role in ("storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"):
        assert (role, "principalId") in assignments, f"the deploying principal lacks {role}"


def test_parameters_file_matches_main_bicep() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main = MAIN_BICEP.read_text()
    declared = dict(re.findall(r"^param (\w+) \w+(.*)$", main, re.MULTILINE))
    assert set(parameters) <= set(declared), f"main.parameters.json sets unknown parameters: {set(parameters) - set(declared)}"
    required = {name for name, rest in declared.items() if "=" not in rest}
    assert required <= set(parameters), f"required parameters without a value: {required - set(parameters)}"
    for name in ("graphClientId", "tapEncryptionKey", "auditKey"):
        assert name in required
    assert parameters["graphClientId"]["value"] == "${GRAPH_CLIENT_ID}"
    assert parameters["tapEncryptionKey"]["value"] == "${JIT_TAP_ENCRYPTION_KEY}"
    assert parameters["auditKey"]["value"] == "${JIT_AUDIT_KEY}"
    assert parameters["auditKeyPrevious"]["value"] == "${JIT_AUDIT_KEY_PREVIOUS=}"


def test_main_passes_every_parameter_of_resources_bicep() -> None:
    module_params = set(re.findall(r"^param (\w+)", RESOURCES_BICEP.read_text(), re.MULTILINE))
    block = re.search(r"module resources 'resources.bicep' = \{.*?params: \{(.*?)\n  \}", MAIN_BICEP.read_text(), re.DOTALL)
    assert block
    passed = set(re.findall(r"^\s+(\w+):", block.group(1), re.MULTILINE))
    assert passed == module_params


def test_main_bicep_outputs_what_azd_and_the_scripts_use() -> None:
    outputs = set(re.findall(r"^output (\w+) ", MAIN_BICEP.read_text(), re.MULTILINE))
    needed = {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_FUNCTION_APP_NAME",
        "SERVICE_API_NAME",
        "SERVICE_API_URI",
        "AZURE_KEY_VAULT_NAME",  # infra/hooks read the existing key back through it
        "GRAPH_MANAGED_IDENTITY_PRINCIPAL_ID",  # scripts/graph/Add-JitFederatedCredential.ps1
        "GRAPH_CLIENT_ID",
        "PORTAL_REDIRECT_URI",  # scripts/graph/New-JitSignInRegistrations.ps1
        "AZURE_AUDIT_CHECKPOINT_CONTAINER",  # docs/deploy.md, locking the checkpoint policy
    }
    assert needed <= outputs, f"missing outputs: {needed - outputs}"
    hook = (INFRA / "hooks" / "preprovision.sh").read_text()
    assert "AZURE_KEY_VAULT_NAME" in hook


# ----------------------------------------------------------------------------------------------------------------
# azure.yaml


def _parse_simple_yaml(text: str) -> dict:
    """Enough YAML for azure.yaml: nested mappings by indentation, plain or quoted scalars, comments. No lists."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        assert "\t" not in raw, f"azure.yaml:{number}: tab"
        indent = len(line) - len(line.lstrip(" "))
        match = re.fullmatch(r"([A-Za-z0-9_.-]+):(?:\s+(.*))?", line.strip())
        assert match, f"azure.yaml:{number}: not a 'key: value' line: {raw!r}"
        key, value = match.groups()
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        assert key not in parent, f"azure.yaml:{number}: duplicate key {key}"
        if value is None:
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            parent[key] = {"true": True, "false": False}.get(value, value)
    return root


def test_azure_yaml() -> None:
    text = (ROOT / "azure.yaml").read_text()
    config = _parse_simple_yaml(text)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        assert yaml.safe_load(text) == config
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", config["name"])
    assert config.get("infra", {}).get("path", "infra") == "infra"
    api = config["services"]["api"]
    assert api["project"] == "."
    assert api["language"] == "python"
    assert api["host"] == "function"
    hooks = config["hooks"]["preprovision"]
    assert hooks["posix"]["shell"] == "sh" and hooks["windows"]["shell"] == "pwsh"
    for variant in ("posix", "windows"):
        script = ROOT / hooks[variant]["run"]
        assert script.is_file(), f"hook script {script} is missing"
    assert (ROOT / hooks["posix"]["run"]).stat().st_mode & 0o111, "the posix hook must be executable"
    # The portal's files are built before every packaging of the service (paths are relative to the service's).
    package = api["hooks"]["prepackage"]
    assert package["posix"]["shell"] == "sh" and package["windows"]["shell"] == "pwsh"
    for variant in ("posix", "windows"):
        script = ROOT / api["project"] / package[variant]["run"]
        assert script.is_file(), f"hook script {script} is missing"
        assert "scripts/build-portal" in script.read_text()
    assert (ROOT / api["project"] / package["posix"]["run"]).stat().st_mode & 0o111, "the posix hook must be executable"


# ----------------------------------------------------------------------------------------------------------------
# Graph setup scripts


def _minimal_set_from_docs() -> tuple[set[str], set[str]]:
    """(all, conditional) permission names of the 'Minimal set to consent to' table of docs/permissions.md."""
    doc = (ROOT / "docs" / "permissions.md").read_text()
    section = doc.split("## Minimal set to consent to", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([A-Za-z][\w.-]+) \| (.*) \|$", section, re.MULTILINE)
    names = {name for name, _ in rows if name != "Permission"}
    conditional = {name for name, why in rows if why.startswith("Only ")}
    return names, conditional


def test_app_registration_permissions_are_exactly_the_documented_minimal_set() -> None:
    definition = json.loads((ROOT / "scripts" / "graph" / "permissions.json").read_text())
    permissions = definition["applicationPermissions"]
    # "always", and one group per optional feature (the scripts' switches); tests/integration/test_graph_permissions.py
    # checks the set against the calls the product makes.
    # PIM mode's opt-in has a section of its own (test_the_pim_opt_in_is_exactly_the_documented_pim_mode_set).
    scripted = {p for name, group in permissions.items() if name != "pim" for p in group}
    documented, conditional = _minimal_set_from_docs()
    assert len(documented) >= 8, "could not read the table of docs/permissions.md"
    assert scripted == documented
    assert {p for name, group in permissions.items() if name not in ("always", "pim") for p in group} == conditional
    assert definition["resourceAppId"] == "00000003-0000-0000-c000-000000000000"
    assert f"**{definition['directoryRole']}**" in (ROOT / "docs" / "permissions.md").read_text()


def test_the_pim_opt_in_is_exactly_the_documented_pim_mode_set() -> None:
    permissions = json.loads((ROOT / "scripts" / "graph" / "permissions.json").read_text())["applicationPermissions"]
    doc = (ROOT / "docs" / "permissions.md").read_text()
    section = doc.split("## PIM mode", 1)[1].split("\n## ", 1)[0]
    table = section.split("| Permission | Why |", 1)[1]
    documented = set(re.findall(r"^\| ([A-Za-z][\w.-]+) \| Only with PIM mode", table, re.MULTILINE))
    assert documented and set(permissions["pim"]) == documented
    minimal, _ = _minimal_set_from_docs()
    assert not documented & minimal  # an opt-in, not part of every tenant's consent
    for name in ("New-JitAppRegistration.ps1", "Grant-JitTenantConsent.ps1"):
        assert "-Pim:$Pim" in (ROOT / "scripts" / "graph" / name).read_text()


def test_graph_scripts_are_documented_and_use_the_shared_permission_set() -> None:
    scripts = sorted(p for p in (ROOT / "scripts" / "graph").glob("*.ps1") if p.name != "JitGraph.Common.ps1")
    assert {p.name for p in scripts} >= {
        "New-JitAppRegistration.ps1",
        "Add-JitFederatedCredential.ps1",
        "Grant-JitTenantConsent.ps1",
        "Enable-JitTapPolicy.ps1",
        "New-JitSignInRegistrations.ps1",
    }
    doc = DEPLOY_DOC.read_text()
    for script in scripts:
        assert script.name in doc, f"docs/deploy.md does not explain {script.name}"
    for name in ("New-JitAppRegistration.ps1", "Grant-JitTenantConsent.ps1"):
        assert "Get-JitPermissionNames" in (ROOT / "scripts" / "graph" / name).read_text()
    federated = (ROOT / "scripts" / "graph" / "Add-JitFederatedCredential.ps1").read_text()
    assert "api://AzureADTokenExchange" in federated
    assert "/v2.0" in federated
