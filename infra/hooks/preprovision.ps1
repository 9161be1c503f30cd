# azd preprovision hook for Windows (azure.yaml), doing what preprovision.sh does: makes sure the azd environment
# holds the right JIT_TAP_ENCRYPTION_KEY.
#   - A first deployment gets a new random key.
#   - An environment deployed before (AZURE_KEY_VAULT_NAME is known; on a new machine run `azd env refresh` first)
#     keeps the key in its vault: it is read back when the azd environment has none, and a different key in the azd
#     environment is refused unless it is a rotation from the vault's key (JIT_TAP_ENCRYPTION_KEY_PREVIOUS equal to it).
# JIT_TAP_ALLOW_NEW_KEY=true overrides these checks. The key is never printed.
$ErrorActionPreference = 'Stop'

$secretName = 'jit-tap-encryption-key'
$allow = $env:JIT_TAP_ALLOW_NEW_KEY -eq 'true'

function Test-TapKey([string] $Value) {
    # 32 bytes in base64: 43 characters and one '=' of padding.
    return $Value -cmatch '^[A-Za-z0-9+/]{43}=$'
}

function Stop-Hook([string] $Message) {
    [Console]::Error.WriteLine("preprovision: $Message")
    [Console]::Error.WriteLine('preprovision: (to use a new key anyway, losing TAPs not yet retrieved: azd env set JIT_TAP_ALLOW_NEW_KEY true)')
    exit 1
}

$envKey = "$env:JIT_TAP_ENCRYPTION_KEY"
$previous = "$env:JIT_TAP_ENCRYPTION_KEY_PREVIOUS"
$vault = "$env:AZURE_KEY_VAULT_NAME"
$vaultKey = ''
if ($vault -and (Get-Command az -ErrorAction SilentlyContinue)) {
    $vaultKey = "$(az keyvault secret show --vault-name $vault --name $secretName --query value -o tsv 2>$null)"
}

if ($envKey -and -not (Test-TapKey $envKey)) {
    [Console]::Error.WriteLine('preprovision: JIT_TAP_ENCRYPTION_KEY in the azd environment is not 32 bytes in base64; fix or unset it')
    exit 1
}

if (Test-TapKey $envKey) {
    if ((Test-TapKey $vaultKey) -and $envKey -cne $vaultKey -and $previous -cne $vaultKey -and -not $allow) {
        Stop-Hook ("JIT_TAP_ENCRYPTION_KEY in the azd environment is not the key in Key Vault $vault, and not a rotation " +
            "from it (JIT_TAP_ENCRYPTION_KEY_PREVIOUS would be the vault's key). Was it rotated elsewhere? Then take it over: " +
            "azd env set JIT_TAP_ENCRYPTION_KEY (az keyvault secret show --vault-name $vault --name $secretName --query value -o tsv)")
    }
    if ($vault -and -not (Test-TapKey $vaultKey)) {
        Write-Host "preprovision: could not read $secretName from Key Vault $vault to compare; using the azd environment's key"
    }
    Write-Host 'preprovision: JIT_TAP_ENCRYPTION_KEY is set in the azd environment'
    exit 0
}

if ($vault -and -not $allow) {
    if (Test-TapKey $vaultKey) {
        azd env set JIT_TAP_ENCRYPTION_KEY $vaultKey | Out-Null
        Write-Host "preprovision: JIT_TAP_ENCRYPTION_KEY taken from Key Vault $vault"
        exit 0
    }
    Stop-Hook ("this environment has Key Vault $vault, but its $secretName could not be read (az login; Key Vault " +
        'Secrets Officer or User on the vault). Fix that, or set the key yourself: azd env set JIT_TAP_ENCRYPTION_KEY <the key>')
}

$bytes = [byte[]]::new(32)
[System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
$key = [Convert]::ToBase64String($bytes)
azd env set JIT_TAP_ENCRYPTION_KEY $key | Out-Null
Write-Host 'preprovision: generated a new JIT_TAP_ENCRYPTION_KEY and saved it in the azd environment'
