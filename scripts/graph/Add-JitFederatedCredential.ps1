#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication
<#
.SYNOPSIS
    Lets the function app's managed identity act as the JIT app registration: a federated identity credential, no secret.

.DESCRIPTION
    Adds (or updates) a federated identity credential on the app registration whose issuer is the tenant's Entra ID
    and whose subject is the managed identity's object (principal) id. The function app then gets a token for
    api://AzureADTokenExchange as its managed identity and exchanges it, as the app, for Graph tokens in any tenant that
    consented to the app (GRAPH_AUTH=workload_identity).

    Run it after `azd up`, in the same tenant as New-JitAppRegistration.ps1 (the identity's tenant). The values come
    from the azd environment:
        azd env get-value GRAPH_CLIENT_ID
        azd env get-value GRAPH_MANAGED_IDENTITY_PRINCIPAL_ID
        azd env get-value SERVICE_API_URI

    With -FunctionAppUri the app also gets <uri>/api/health as a web redirect URI, so the admin-consent link of
    Grant-JitTenantConsent.ps1 has somewhere to land.

.EXAMPLE
    ./scripts/graph/Add-JitFederatedCredential.ps1 `
        -AppId (azd env get-value GRAPH_CLIENT_ID) `
        -ManagedIdentityPrincipalId (azd env get-value GRAPH_MANAGED_IDENTITY_PRINCIPAL_ID) `
        -FunctionAppUri (azd env get-value SERVICE_API_URI)
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $AppId,
    # The managed identity's Object (principal) ID (not its client id).
    [Parameter(Mandatory)] [string] $ManagedIdentityPrincipalId,
    # The identity's (and the app registration's) tenant. Default: the signed-in tenant.
    [string] $TenantId,
    [string] $Name = 'jit-function-app-identity',
    # Public cloud. (US Government: login.microsoftonline.us and api://AzureADTokenExchangeUSGov;
    # China: login.chinacloudapi.cn and api://AzureADTokenExchangeChina.)
    [string] $AuthorityHost = 'login.microsoftonline.com',
    [string] $Audience = 'api://AzureADTokenExchange',
    [string] $FunctionAppUri
)

. (Join-Path $PSScriptRoot 'JitGraph.Common.ps1')

$context = Connect-JitGraph -TenantId $TenantId -Scopes 'Application.ReadWrite.All'
$issuer = "https://$AuthorityHost/$($context.TenantId)/v2.0"

$app = Get-JitApplication -AppId $AppId
$credential = @{
    issuer      = $issuer
    subject     = $ManagedIdentityPrincipalId
    audiences   = @($Audience)
    description = 'The JIT function app''s user-assigned managed identity (infra/resources.bicep)'
}

$existing = @(Get-GraphCollection -Path "v1.0/applications/$($app.id)/federatedIdentityCredentials")
$same = @($existing | Where-Object { $_.issuer -eq $issuer -and $_.subject -eq $ManagedIdentityPrincipalId })
$named = @($existing | Where-Object { $_.name -eq $Name })
if ($same.Count -gt 0) {
    Write-Host "The app already trusts this identity (federated credential '$($same[0].name)')"
} elseif ($named.Count -gt 0) {
    # Same name, another identity (for example after the resources were recreated): point it at this one.
    Invoke-Graph -Method PATCH -Path "v1.0/applications/$($app.id)/federatedIdentityCredentials/$($named[0].id)" -Body $credential | Out-Null
    Write-Host "Updated federated credential '$Name': subject $ManagedIdentityPrincipalId"
} else {
    $credential.name = $Name
    Invoke-Graph -Method POST -Path "v1.0/applications/$($app.id)/federatedIdentityCredentials" -Body $credential | Out-Null
    Write-Host "Added federated credential '$Name': issuer $issuer, subject $ManagedIdentityPrincipalId"
}

if ($FunctionAppUri) {
    $redirect = $FunctionAppUri.TrimEnd('/') + '/api/health'
    $uris = @($app.web.redirectUris)
    if ($uris -notcontains $redirect) {
        Invoke-Graph -Method PATCH -Path "v1.0/applications/$($app.id)" -Body @{ web = @{ redirectUris = @($uris + $redirect) } } | Out-Null
        Write-Host "Added redirect URI $redirect (for the admin-consent link)"
    }
}
