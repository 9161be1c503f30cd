#!/bin/sh
# azd preprovision hook (azure.yaml): makes sure the azd environment holds the right JIT_TAP_ENCRYPTION_KEY, which
# infra/main.parameters.json passes to Bicep and Bicep stores in Key Vault (the app reads it from there).
#   - A first deployment gets a new random key.
#   - An environment deployed before (AZURE_KEY_VAULT_NAME is known; on a new machine run `azd env refresh` first)
#     keeps the key in its vault: it is read back when the azd environment has none, and a different key in the azd
#     environment is refused unless it is a rotation from the vault's key (JIT_TAP_ENCRYPTION_KEY_PREVIOUS equal to
#     it, docs/deploy.md). Reading the vault needs `az login` and Key Vault Secrets Officer (or User) on it.
# A wrong key would make the TAPs sealed with the right one unreadable; JIT_TAP_ALLOW_NEW_KEY=true overrides these
# checks when that is intended. The key is never printed.
set -eu

SECRET_NAME="jit-tap-encryption-key"
ALLOW="${JIT_TAP_ALLOW_NEW_KEY:-false}"

is_key() {
  # 32 bytes in base64: 43 characters and one '=' of padding.
  printf '%s' "$1" | grep -Eq '^[A-Za-z0-9+/]{43}=$'
}

fail() {
  for line in "$@"; do echo "preprovision: $line" >&2; done
  echo "preprovision: (to use a new key anyway, losing TAPs not yet retrieved: azd env set JIT_TAP_ALLOW_NEW_KEY true)" >&2
  exit 1
}

env_key="${JIT_TAP_ENCRYPTION_KEY:-}"
previous="${JIT_TAP_ENCRYPTION_KEY_PREVIOUS:-}"
vault="${AZURE_KEY_VAULT_NAME:-}"
vault_key=""
if [ -n "$vault" ] && command -v az >/dev/null 2>&1; then
  vault_key=$(az keyvault secret show --vault-name "$vault" --name "$SECRET_NAME" --query value -o tsv 2>/dev/null || true)
fi

if [ -n "$env_key" ] && ! is_key "$env_key"; then
  echo "preprovision: JIT_TAP_ENCRYPTION_KEY in the azd environment is not 32 bytes in base64; fix or unset it" >&2
  exit 1
fi

if is_key "$env_key"; then
  if is_key "$vault_key" && [ "$env_key" != "$vault_key" ] && [ "$previous" != "$vault_key" ] && [ "$ALLOW" != "true" ]; then
    fail "JIT_TAP_ENCRYPTION_KEY in the azd environment is not the key in Key Vault $vault, and not a rotation from it" \
      "(JIT_TAP_ENCRYPTION_KEY_PREVIOUS would be the vault's key). Was it rotated elsewhere? Then take it over:" \
      "azd env set JIT_TAP_ENCRYPTION_KEY \"\$(az keyvault secret show --vault-name $vault --name $SECRET_NAME --query value -o tsv)\""
  fi
  if [ -n "$vault" ] && ! is_key "$vault_key"; then
    echo "preprovision: could not read $SECRET_NAME from Key Vault $vault to compare; using the azd environment's key"
  fi
  echo "preprovision: JIT_TAP_ENCRYPTION_KEY is set in the azd environment"
  exit 0
fi

if [ -n "$vault" ] && [ "$ALLOW" != "true" ]; then
  if is_key "$vault_key"; then
    azd env set JIT_TAP_ENCRYPTION_KEY "$vault_key" >/dev/null
    echo "preprovision: JIT_TAP_ENCRYPTION_KEY taken from Key Vault $vault"
    exit 0
  fi
  fail "this environment has Key Vault $vault, but its $SECRET_NAME could not be read" \
    "(az login; Key Vault Secrets Officer or User on the vault). Fix that, or set the key yourself:" \
    "azd env set JIT_TAP_ENCRYPTION_KEY <the key>"
fi

key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
if ! is_key "$key"; then
  echo "preprovision: could not generate a key (head, base64)" >&2
  exit 1
fi
azd env set JIT_TAP_ENCRYPTION_KEY "$key" >/dev/null
echo "preprovision: generated a new JIT_TAP_ENCRYPTION_KEY and saved it in the azd environment"
