# Helpers shared by the scripts in this folder (dot-sourced). They use only the Microsoft.Graph.Authentication module:
# Connect-MgGraph for a delegated sign-in and Invoke-MgGraphRequest for plain Graph v1.0 REST calls.

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# Microsoft Graph's application id: the same in every tenant.
$script:GraphAppId = '00000003-0000-0000-c000-000000000000'

function Connect-JitGraph {
    param(
        [string] $TenantId,
        [Parameter(Mandatory)] [string[]] $Scopes
    )
    $arguments = @{ Scopes = $Scopes; NoWelcome = $true }
    if ($TenantId) { $arguments.TenantId = $TenantId }
    Connect-MgGraph @arguments | Out-Null
    $context = Get-MgContext
    Write-Host "Signed in as $($context.Account) to tenant $($context.TenantId)"
    return $context
}

function Invoke-Graph {
    param(
        [Parameter(Mandatory)] [string] $Method,
        [Parameter(Mandatory)] [string] $Path,   # relative, e.g. 'v1.0/applications'
        $Body
    )
    $arguments = @{ Method = $Method; Uri = $Path; OutputType = 'PSObject' }
    if ($null -ne $Body) {
        $arguments.Body = ($Body | ConvertTo-Json -Depth 10 -Compress)
        $arguments.ContentType = 'application/json'
    }
    return Invoke-MgGraphRequest @arguments
}

# For writes that refer to an object created a moment ago (a new service principal): Entra replicates it within
# seconds, and until then Graph may answer that it does not exist.
function Invoke-GraphRetrying {
    param(
        [Parameter(Mandatory)] [string] $Method,
        [Parameter(Mandatory)] [string] $Path,
        $Body,
        [int] $Attempts = 6
    )
    for ($attempt = 1; ; $attempt++) {
        try {
            return Invoke-Graph -Method $Method -Path $Path -Body $Body
        } catch {
            if ($attempt -ge $Attempts) { throw }
            Write-Host "  Graph refused ($($_.Exception.Message)); retrying in 10 seconds"
            Start-Sleep -Seconds 10
        }
    }
}

function Get-GraphCollection {
    param([Parameter(Mandatory)] [string] $Path)
    $items = @()
    $next = $Path
    while ($next) {
        $page = Invoke-Graph -Method GET -Path $next
        $items += @($page.value)
        $next = if ($page.PSObject.Properties['@odata.nextLink']) { $page.'@odata.nextLink' } else { $null }
    }
    return $items
}

# The permission names of permissions.json for the chosen features.
function Get-JitPermissionNames {
    param([switch] $EmailNotifications, [switch] $PermanentDelete, [switch] $Pim)
    $definition = Get-Content -Raw -Path (Join-Path $PSScriptRoot 'permissions.json') | ConvertFrom-Json
    $names = @($definition.applicationPermissions.always)
    if ($EmailNotifications) { $names += @($definition.applicationPermissions.emailNotifications) }
    if ($PermanentDelete) { $names += @($definition.applicationPermissions.permanentDelete) }
    if ($Pim) { $names += @($definition.applicationPermissions.pim) }
    return $names
}

function Get-JitDirectoryRoleName {
    $definition = Get-Content -Raw -Path (Join-Path $PSScriptRoot 'permissions.json') | ConvertFrom-Json
    return $definition.directoryRole
}

# Microsoft Graph's service principal in the signed-in tenant, with its app roles (the application permissions).
function Get-GraphServicePrincipal {
    $found = @(Get-GraphCollection -Path "v1.0/servicePrincipals?`$filter=appId eq '$script:GraphAppId'&`$select=id,appId,appRoles")
    if ($found.Count -ne 1) { throw "Microsoft Graph's service principal was not found in this tenant" }
    return $found[0]
}

# Application permission names -> app role ids, failing on a name Graph does not (yet) define in this tenant.
function Resolve-GraphAppRoleIds {
    param([Parameter(Mandatory)] $GraphServicePrincipal, [Parameter(Mandatory)] [string[]] $Names)
    $ids = [ordered]@{}
    foreach ($name in $Names) {
        $role = @($GraphServicePrincipal.appRoles | Where-Object { $_.value -ceq $name -and $_.allowedMemberTypes -contains 'Application' })
        if ($role.Count -ne 1) { throw "Microsoft Graph has no application permission named '$name' in this tenant" }
        $ids[$name] = $role[0].id
    }
    return $ids
}

function Get-JitApplication {
    param([Parameter(Mandatory)] [string] $AppId)
    return Invoke-Graph -Method GET -Path "v1.0/applications(appId='$AppId')"
}
