#!/bin/sh
# azd preprovision hook (azure.yaml): makes sure the azd environment holds the right JIT_TAP_ENCRYPTION_KEY and
# JIT_AUDIT_KEY, which infra/main.parameters.json passes to Bicep and Bicep stores in Key Vault (the app reads them
# from there). For each key:
#   - A first deployment gets a new random key; so does an environment whose vault does not hold that key yet (an
#     environment deployed before the key existed).
#   - An environment deployed before (AZURE_KEY_VAULT_NAME is known; on a new machine run `azd env refresh` first)
#     keeps the key in its vault: it is read back when the azd environment has none, and a different key in the azd
#     environment is refused unless it is a rotation from the vault's key (the _PREVIOUS setting equal to it,
#     docs/deploy.md). Reading the vault needs `az login` and Key Vault Secrets Officer (or User) on it.
# A wrong TAP key makes the TAPs sealed with the right one unreadable; a wrong audit key makes the audit trail signed
# with the right one fail verification. JIT_TAP_ALLOW_NEW_KEY=true / JIT_AUDIT_ALLOW_NEW_KEY=true override these
# checks when that is intended. No key is ever printed.
set -eu

vault="${AZURE_KEY_VAULT_NAME:-}"

is_key() {
  # 32 bytes in base64: 43 characters and one '=' of padding.
  printf '%s' "$1" | grep -Eq '^[A-Za-z0-9+/]{43}=$'
}

# The vault's secret $1 on stdout. Returns 0 when read, 3 when the vault has no such secret, 1 when the vault could
# not be asked (no az, not signed in, no role on the vault).
vault_secret() {
  if [ -z "$vault" ] || ! command -v az >/dev/null 2>&1; then
    return 1
  fi
  ids=$(az keyvault secret list --vault-name "$vault" --query "[].id" -o tsv 2>/dev/null) || return 1
  if ! printf '%s\n' "$ids" | grep -q "/secrets/$1\$"; then
    return 3
  fi
  az keyvault secret show --vault-name "$vault" --name "$1" --query value -o tsv 2>/dev/null || return 1
}

# Stops the provision, naming the key (ensure_key's $name) and its override.
fail() {
  for line in "$@"; do echo "preprovision: $line" >&2; done
  echo "preprovision: (to use a new $name anyway: azd env set $allow_name true, then unset it)" >&2
  exit 1
}

# ensure_key VARIABLE SECRET_NAME PREVIOUS_VARIABLE ALLOW_VARIABLE
ensure_key() {
  name=$1
  secret=$2
  previous_name=$3
  allow_name=$4
  env_key='' previous='' allow=false
  # Indirect reads: POSIX sh has no ${!name}.
  eval "env_key=\${$name:-}"
  eval "previous=\${$previous_name:-}"
  eval "allow=\${$allow_name:-false}"

  if [ -n "$env_key" ] && ! is_key "$env_key"; then
    echo "preprovision: $name in the azd environment is not 32 bytes in base64; fix or unset it" >&2
    exit 1
  fi

  state=found
  vault_key=$(vault_secret "$secret") || state=$?
  if [ "$state" = found ] && ! is_key "$vault_key"; then
    state=1
  fi

  if [ -n "$env_key" ]; then
    if [ "$state" = found ] && [ "$env_key" != "$vault_key" ] && [ "$previous" != "$vault_key" ] && [ "$allow" != true ]; then
      fail "$name in the azd environment is not the key in Key Vault $vault, and not a rotation from it" \
        "($previous_name would be the vault's key). Was it rotated elsewhere? Then take it over:" \
        "azd env set $name \"\$(az keyvault secret show --vault-name $vault --name $secret --query value -o tsv)\""
    fi
    if [ -n "$vault" ] && [ "$state" = 1 ]; then
      echo "preprovision: could not read $secret from Key Vault $vault to compare; using the azd environment's $name"
    fi
    echo "preprovision: $name is set in the azd environment"
    return 0
  fi

  if [ -n "$vault" ] && [ "$allow" != true ]; then
    if [ "$state" = found ]; then
      azd env set "$name" "$vault_key" >/dev/null
      echo "preprovision: $name taken from Key Vault $vault"
      return 0
    fi
    if [ "$state" = 1 ]; then
      fail "this environment has Key Vault $vault, but its $secret could not be read" \
        "(az login; Key Vault Secrets Officer or User on the vault). Fix that, or set the key yourself:" \
        "azd env set $name <the key>"
    fi
    echo "preprovision: Key Vault $vault holds no $secret yet"
  fi

  key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
  if ! is_key "$key"; then
    echo "preprovision: could not generate a key (head, base64)" >&2
    exit 1
  fi
  azd env set "$name" "$key" >/dev/null
  echo "preprovision: generated a new $name and saved it in the azd environment"
}

ensure_key JIT_TAP_ENCRYPTION_KEY jit-tap-encryption-key JIT_TAP_ENCRYPTION_KEY_PREVIOUS JIT_TAP_ALLOW_NEW_KEY
ensure_key JIT_AUDIT_KEY jit-audit-key JIT_AUDIT_KEY_PREVIOUS JIT_AUDIT_ALLOW_NEW_KEY
