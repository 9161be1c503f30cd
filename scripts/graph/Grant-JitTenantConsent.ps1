#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication
<#
.SYNOPSIS
    Onboards one customer tenant: admin consent to the JIT app's Graph permissions, and the Entra role its service
    principal needs there.

.DESCRIPTION
    Run it once per customer tenant, signed in as an administrator of that tenant (Global Administrator, or
    Privileged Role Administrator: granting application permissions and assigning a privileged role both need it).
    It is idempotent: what is already there is left alone.

      1. Creates the app's service principal in the tenant if it has none (the tenant's "enterprise application").
      2. Grants the Graph application permissions of permissions.json (docs/permissions.md): one app role assignment
         each, which is what admin consent does. Permissions granted earlier but no longer in the set are listed, not
         removed.
      3. Assigns the service principal the Entra role Privileged Authentication Administrator at tenant scope: Graph
         permissions alone do not let an app reset, disable or delete an account that holds an admin role
         (docs/permissions.md, "Entra roles the app's service principal needs in each tenant").

    Instead of steps 1 and 2 an administrator can open the admin-consent link this script prints (it needs the
    redirect URI Add-JitFederatedCredential.ps1 -FunctionAppUri registers); step 3 is then still needed (portal:
    Roles and administrators > Privileged Authentication Administrator > Add assignments > the app).

    The tenant must also allow Temporary Access Passes for the accounts the product creates: Enable-JitTapPolicy.ps1.

.EXAMPLE
    ./scripts/graph/Grant-JitTenantConsent.ps1 -TenantId fabrikam.onmicrosoft.com -AppId (azd env get-value GRAPH_CLIENT_ID)
#>
[CmdletBinding()]
param(
    # The customer tenant (GUID or domain).
    [Parameter(Mandatory)] [string] $TenantId,
    # The JIT app registration's Application (client) ID (GRAPH_CLIENT_ID).
    [Parameter(Mandatory)] [string] $AppId,
    # Add Mail.Send: in the tenant whose mailbox sends the email notifications (JIT_NOTIFY_MAILBOX) only.
    [switch] $EmailNotifications,
    # Add User.DeleteRestore.All: only with JIT_PERMANENT_DELETE=true.
    [switch] $PermanentDelete,
    # Add PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup: only for tenants onboarded with directory entra-pim
    # (group memberships as PIM for Groups assignments; docs/permissions.md, "PIM mode").
    [switch] $Pim,
    # Do not assign the Entra role (for example when it is assigned through PIM or by another process).
    [switch] $SkipDirectoryRole,
    # The redirect URI registered for the consent link (SERVICE_API_URI + /api/health).
    [string] $ConsentRedirectUri
)

. (Join-Path $PSScriptRoot 'JitGraph.Common.ps1')

if ($ConsentRedirectUri) {
    $link = "https://login.microsoftonline.com/$TenantId/v2.0/adminconsent?client_id=$AppId" +
        "&scope=$([uri]::EscapeDataString('https://graph.microsoft.com/.default'))" +
        "&redirect_uri=$([uri]::EscapeDataString($ConsentRedirectUri))"
    Write-Host "Admin-consent link (an alternative to steps 1 and 2): $link"
}

$scopes = @('Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All', 'RoleManagement.ReadWrite.Directory')
Connect-JitGraph -TenantId $TenantId -Scopes $scopes | Out-Null

# 1. The app's service principal in this tenant.
$found = @(Get-GraphCollection -Path "v1.0/servicePrincipals?`$filter=appId eq '$AppId'&`$select=id,appId,displayName")
if ($found.Count -eq 0) {
    $sp = Invoke-Graph -Method POST -Path 'v1.0/servicePrincipals' -Body @{ appId = $AppId }
    Write-Host "Created the service principal of app $AppId ($($sp.displayName))"
} else {
    $sp = $found[0]
    Write-Host "Service principal of app $AppId exists ($($sp.displayName))"
}

# 2. Graph application permissions.
$graph = Get-GraphServicePrincipal
$names = Get-JitPermissionNames -EmailNotifications:$EmailNotifications -PermanentDelete:$PermanentDelete -Pim:$Pim
$roleIds = Resolve-GraphAppRoleIds -GraphServicePrincipal $graph -Names $names
$granted = @(Get-GraphCollection -Path "v1.0/servicePrincipals/$($sp.id)/appRoleAssignments" |
    Where-Object { $_.resourceId -eq $graph.id })
foreach ($name in $roleIds.Keys) {
    $roleId = $roleIds[$name]
    if (@($granted | Where-Object { $_.appRoleId -eq $roleId }).Count -gt 0) {
        Write-Host "  granted already: $name"
        continue
    }
    Invoke-GraphRetrying -Method POST -Path "v1.0/servicePrincipals/$($graph.id)/appRoleAssignedTo" -Body @{
        principalId = $sp.id
        resourceId  = $graph.id
        appRoleId   = $roleId
    } | Out-Null
    Write-Host "  granted: $name"
}
$wanted = @($roleIds.Values)
foreach ($extra in @($granted | Where-Object { $wanted -notcontains $_.appRoleId })) {
    $value = @($graph.appRoles | Where-Object { $_.id -eq $extra.appRoleId } | ForEach-Object { $_.value })
    Write-Warning "granted but not in the set (remove it if nothing else needs it): $($value -join '') ($($extra.id))"
}

# 3. The Entra role.
if (-not $SkipDirectoryRole) {
    $roleName = Get-JitDirectoryRoleName
    $definitions = @(Get-GraphCollection -Path "v1.0/roleManagement/directory/roleDefinitions?`$select=id,displayName" |
        Where-Object { $_.displayName -eq $roleName })
    if ($definitions.Count -ne 1) { throw "Entra role '$roleName' not found in this tenant" }
    $definitionId = $definitions[0].id
    $assigned = @(Get-GraphCollection -Path "v1.0/roleManagement/directory/roleAssignments?`$filter=principalId eq '$($sp.id)'" |
        Where-Object { $_.roleDefinitionId -eq $definitionId -and $_.directoryScopeId -eq '/' })
    if ($assigned.Count -gt 0) {
        Write-Host "Entra role '$roleName' is assigned already"
    } else {
        Invoke-GraphRetrying -Method POST -Path 'v1.0/roleManagement/directory/roleAssignments' -Body @{
            principalId      = $sp.id
            roleDefinitionId = $definitionId
            directoryScopeId = '/'
        } | Out-Null
        Write-Host "Assigned Entra role '$roleName' to the app's service principal"
    }
}

Write-Host ''
Write-Host "Tenant $TenantId is onboarded for app $AppId. Next, if not done yet: ./scripts/graph/Enable-JitTapPolicy.ps1 -TenantId $TenantId"
