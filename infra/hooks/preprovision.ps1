# azd preprovision hook for Windows (azure.yaml), doing what preprovision.sh does: makes sure the azd environment
# holds the right JIT_TAP_ENCRYPTION_KEY and JIT_AUDIT_KEY. For each key:
#   - A first deployment gets a new random key; so does an environment whose vault does not hold that key yet.
#   - An environment deployed before (AZURE_KEY_VAULT_NAME is known; on a new machine run `azd env refresh` first)
#     keeps the key in its vault: it is read back when the azd environment has none, and a different key in the azd
#     environment is refused unless it is a rotation from the vault's key (the _PREVIOUS setting equal to it).
# JIT_TAP_ALLOW_NEW_KEY=true / JIT_AUDIT_ALLOW_NEW_KEY=true override these checks. No key is ever printed.
$ErrorActionPreference = 'Stop'

$vault = "$env:AZURE_KEY_VAULT_NAME"

function Test-Key([string] $Value) {
    # 32 bytes in base64: 43 characters and one '=' of padding.
    return $Value -cmatch '^[A-Za-z0-9+/]{43}=$'
}

# @{ State = 'found' | 'absent' | 'unreadable'; Value = the secret when found }
function Get-VaultSecret([string] $SecretName) {
    if (-not $vault -or -not (Get-Command az -ErrorAction SilentlyContinue)) { return @{ State = 'unreadable' } }
    $ids = @(az keyvault secret list --vault-name $vault --query '[].id' -o tsv 2>$null)
    if ($LASTEXITCODE -ne 0) { return @{ State = 'unreadable' } }
    if (-not ($ids | Where-Object { "$_".Trim() -like "*/secrets/$SecretName" })) { return @{ State = 'absent' } }
    $value = "$(az keyvault secret show --vault-name $vault --name $SecretName --query value -o tsv 2>$null)".Trim()
    if ($LASTEXITCODE -ne 0 -or -not (Test-Key $value)) { return @{ State = 'unreadable' } }
    return @{ State = 'found'; Value = $value }
}

function Stop-Hook([string] $Message, [string] $Name, [string] $AllowName) {
    [Console]::Error.WriteLine("preprovision: $Message")
    [Console]::Error.WriteLine("preprovision: (to use a new $Name anyway: azd env set $AllowName true, then unset it)")
    exit 1
}

function Confirm-Key([string] $Name, [string] $SecretName, [string] $PreviousName, [string] $AllowName) {
    $envKey = [Environment]::GetEnvironmentVariable($Name)
    $previous = [Environment]::GetEnvironmentVariable($PreviousName)
    $allow = [Environment]::GetEnvironmentVariable($AllowName) -eq 'true'

    if ($envKey -and -not (Test-Key $envKey)) {
        [Console]::Error.WriteLine("preprovision: $Name in the azd environment is not 32 bytes in base64; fix or unset it")
        exit 1
    }

    $secret = Get-VaultSecret $SecretName

    if ($envKey) {
        if ($secret.State -eq 'found' -and $envKey -cne $secret.Value -and $previous -cne $secret.Value -and -not $allow) {
            Stop-Hook ("$Name in the azd environment is not the key in Key Vault $vault, and not a rotation from it " +
                "($PreviousName would be the vault's key). Was it rotated elsewhere? Then take it over: " +
                "azd env set $Name (az keyvault secret show --vault-name $vault --name $SecretName --query value -o tsv)") $Name $AllowName
        }
        if ($vault -and $secret.State -eq 'unreadable') {
            Write-Host "preprovision: could not read $SecretName from Key Vault $vault to compare; using the azd environment's $Name"
        }
        Write-Host "preprovision: $Name is set in the azd environment"
        return
    }

    if ($vault -and -not $allow) {
        if ($secret.State -eq 'found') {
            azd env set $Name $secret.Value | Out-Null
            Write-Host "preprovision: $Name taken from Key Vault $vault"
            return
        }
        if ($secret.State -eq 'unreadable') {
            Stop-Hook ("this environment has Key Vault $vault, but its $SecretName could not be read (az login; Key Vault " +
                "Secrets Officer or User on the vault). Fix that, or set the key yourself: azd env set $Name <the key>") $Name $AllowName
        }
        Write-Host "preprovision: Key Vault $vault holds no $SecretName yet"
    }

    $bytes = [byte[]]::new(32)
    [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
    azd env set $Name ([Convert]::ToBase64String($bytes)) | Out-Null
    Write-Host "preprovision: generated a new $Name and saved it in the azd environment"
}

Confirm-Key 'JIT_TAP_ENCRYPTION_KEY' 'jit-tap-encryption-key' 'JIT_TAP_ENCRYPTION_KEY_PREVIOUS' 'JIT_TAP_ALLOW_NEW_KEY'
Confirm-Key 'JIT_AUDIT_KEY' 'jit-audit-key' 'JIT_AUDIT_KEY_PREVIOUS' 'JIT_AUDIT_ALLOW_NEW_KEY'
