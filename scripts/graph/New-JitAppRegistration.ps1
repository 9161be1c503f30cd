#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication
<#
.SYNOPSIS
    Creates, or updates, the multi-tenant app registration the JIT function app acts as in Microsoft Graph.

.DESCRIPTION
    Run it in the tenant of the Azure subscription you deploy to: the function app's managed identity lives there, and
    a managed identity can be the federated credential only of an app registration in its own tenant.
    The signed-in user needs Application Administrator, Cloud Application Administrator, or Application Developer
    (then the user owns the app it creates) in that tenant.

    The app gets:
      - signInAudience AzureADMultipleOrgs, so customer tenants can consent to it;
      - the Microsoft Graph application permissions of permissions.json (docs/permissions.md) as its required
        permissions: what an administrator's consent in a customer tenant grants;
      - no secret and no certificate: the function app signs in with its managed identity as a federated credential
        (Add-JitFederatedCredential.ps1, after `azd up`).

    Running it again updates the same app (found by -AppId, or by its display name) to the current permission set.
    Then: azd env set GRAPH_CLIENT_ID <the appId printed>.

.EXAMPLE
    ./scripts/graph/New-JitAppRegistration.ps1 -TenantId contoso.onmicrosoft.com

.EXAMPLE
    # The app of an MSP whose own tenant sends the email notifications, with permanent delete (JIT_PERMANENT_DELETE=true).
    ./scripts/graph/New-JitAppRegistration.ps1 -EmailNotifications -PermanentDelete
#>
[CmdletBinding()]
param(
    # Tenant of the Azure subscription (GUID or domain). Default: the account's home tenant.
    [string] $TenantId,
    [string] $DisplayName = 'JIT admin access',
    # Update this app (its Application (client) ID) instead of finding the app by display name.
    [string] $AppId,
    # Add Mail.Send: in the tenant whose mailbox sends the email notifications (JIT_NOTIFY_MAILBOX) only.
    [switch] $EmailNotifications,
    # Add User.DeleteRestore.All: only with JIT_PERMANENT_DELETE=true.
    [switch] $PermanentDelete,
    # Add PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup: only for tenants onboarded with directory entra-pim
    # (group memberships as PIM for Groups assignments; docs/permissions.md, "PIM mode").
    [switch] $Pim
)

. (Join-Path $PSScriptRoot 'JitGraph.Common.ps1')

Connect-JitGraph -TenantId $TenantId -Scopes 'Application.ReadWrite.All' | Out-Null

$names = Get-JitPermissionNames -EmailNotifications:$EmailNotifications -PermanentDelete:$PermanentDelete -Pim:$Pim
$graph = Get-GraphServicePrincipal
$roleIds = Resolve-GraphAppRoleIds -GraphServicePrincipal $graph -Names $names
$requiredResourceAccess = @(
    @{
        resourceAppId  = $script:GraphAppId
        resourceAccess = @($roleIds.Values | ForEach-Object { @{ id = $_; type = 'Role' } })
    }
)

if ($AppId) {
    $app = Get-JitApplication -AppId $AppId
} else {
    $matching = @(Get-GraphCollection -Path "v1.0/applications?`$filter=displayName eq '$($DisplayName.Replace("'", "''"))'&`$select=id,appId,displayName")
    if ($matching.Count -gt 1) {
        throw "$($matching.Count) app registrations are named '$DisplayName'; pass -AppId to choose one"
    }
    $app = if ($matching.Count -eq 1) { $matching[0] } else { $null }
}

if ($null -eq $app) {
    $app = Invoke-Graph -Method POST -Path 'v1.0/applications' -Body @{
        displayName            = $DisplayName
        signInAudience         = 'AzureADMultipleOrgs'
        requiredResourceAccess = $requiredResourceAccess
    }
    Write-Host "Created app registration '$DisplayName'"
} else {
    Invoke-Graph -Method PATCH -Path "v1.0/applications/$($app.id)" -Body @{
        signInAudience         = 'AzureADMultipleOrgs'
        requiredResourceAccess = $requiredResourceAccess
    } | Out-Null
    Write-Host "Updated app registration '$($app.displayName)'"
}

Write-Host ''
Write-Host "Application (client) ID: $($app.appId)"
Write-Host "Graph application permissions: $($names -join ', ')"
Write-Host ''
Write-Host 'Next:'
Write-Host "  azd env set GRAPH_CLIENT_ID $($app.appId)"
Write-Host '  azd up'
Write-Host "  ./scripts/graph/Add-JitFederatedCredential.ps1 -AppId $($app.appId) -ManagedIdentityPrincipalId <GRAPH_MANAGED_IDENTITY_PRINCIPAL_ID>"
Write-Host "  ./scripts/graph/Grant-JitTenantConsent.ps1 -TenantId <customer tenant> -AppId $($app.appId)   (each customer tenant)"
Write-Host '  ./scripts/graph/Enable-JitTapPolicy.ps1 -TenantId <customer tenant>                         (each customer tenant)'
Write-Output $app.appId
