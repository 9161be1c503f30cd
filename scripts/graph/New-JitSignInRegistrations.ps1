#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication
<#
.SYNOPSIS
    Creates, or updates, the two app registrations people sign in with: the API (app roles, a delegated scope) and
    the portal (a single-page application).

.DESCRIPTION
    Run it in the tenant whose people use the service (the MSP's own; normally the tenant of the Azure subscription).
    The signed-in user needs Application Administrator, Cloud Application Administrator, or Application Developer (then
    the user owns the apps it creates). -GrantAdminConsent needs an administrator who may grant tenant-wide consent.

    The API registration ("JIT admin access API", single tenant) gets:
      - the Application ID URI api://<its client id> and one delegated scope, access_as_user;
      - the app roles Jit.Requester, Jit.Approver and Jit.Admin for users and groups (and for applications, only those
        named in -ApplicationRoles: flows and scripts that call with their own client-credentials token);
      - api.requestedAccessTokenVersion 2 (the audience of its tokens is then its client id) and the optional access
        token claim idtyp (which tells an application's token from a person's);
      - the portal as a pre-authorized client of access_as_user, so nobody is asked to consent to it;
      - on its enterprise application (service principal): assignment required, so Entra issues tokens for the API
        only to people and groups assigned one of its app roles.
    The portal registration ("JIT admin access portal", single tenant) gets the single-page-application platform with
    the redirect URIs given (the portal's is https://<function app host>/portal/, the azd output PORTAL_REDIRECT_URI),
    and as required permissions the API's access_as_user and Microsoft Graph's openid and profile.

    Running it again finds both apps (by -ApiAppId/-PortalAppId, or by display name) and brings them to this state,
    keeping the ids of existing roles and scopes and adding redirect URIs without removing others.
    Then (docs/deploy.md, "Sign-in"):
        azd env set JIT_AUTH_CLIENT_ID <API client id>
        azd env set JIT_AUTH_AUDIENCES api://<API client id>
        azd env set JIT_PORTAL_CLIENT_ID <portal client id>
        azd provision
    and assign people or groups to the app roles (Enterprise applications > JIT admin access API > Users and groups).

.EXAMPLE
    # Before the first `azd up` (no redirect URI yet), then again once the function app exists:
    ./scripts/graph/New-JitSignInRegistrations.ps1
    ./scripts/graph/New-JitSignInRegistrations.ps1 -PortalRedirectUri (azd env get-value PORTAL_REDIRECT_URI)

.EXAMPLE
    # A flow or script that requests access with its own identity may hold Jit.Requester; consent for openid/profile
    # given for the whole tenant at once.
    ./scripts/graph/New-JitSignInRegistrations.ps1 -PortalRedirectUri https://func-jit-abc.azurewebsites.net/portal/ `
        -ApplicationRoles Jit.Requester -GrantAdminConsent
#>
[CmdletBinding()]
param(
    # The tenant (GUID or domain). Default: the account's home tenant.
    [string] $TenantId,
    [string] $ApiDisplayName = 'JIT admin access API',
    [string] $PortalDisplayName = 'JIT admin access portal',
    # Update these apps (their Application (client) IDs) instead of finding them by display name.
    [string] $ApiAppId,
    [string] $PortalAppId,
    # Redirect URIs of the portal (https, or http://localhost:<port>/portal/ for development). Added, never removed.
    [string[]] $PortalRedirectUri = @(),
    # App roles that applications (client credentials) may hold, besides users and groups.
    [ValidateSet('Jit.Requester', 'Jit.Approver', 'Jit.Admin')]
    [string[]] $ApplicationRoles = @(),
    # Grant tenant-wide (admin) consent to the portal for Microsoft Graph's openid and profile.
    [switch] $GrantAdminConsent
)

. (Join-Path $PSScriptRoot 'JitGraph.Common.ps1')

foreach ($uri in $PortalRedirectUri) {
    $parsed = [Uri]$uri
    $loopback = $parsed.Host -in @('localhost', '127.0.0.1')
    if (-not ($parsed.Scheme -eq 'https' -or ($parsed.Scheme -eq 'http' -and $loopback))) {
        throw "Portal redirect URI '$uri' must be https (plain http only on localhost)"
    }
}

$scopes = @('Application.ReadWrite.All')
if ($GrantAdminConsent) { $scopes += 'DelegatedPermissionGrant.ReadWrite.All' }
Connect-JitGraph -TenantId $TenantId -Scopes $scopes | Out-Null

$roleDefinitions = [ordered]@{
    'Jit.Requester' = @('JIT requester', 'Requests just-in-time admin access and uses the access granted to them.')
    'Jit.Approver'  = @('JIT approver', 'Approves or denies requests for just-in-time admin access.')
    'Jit.Admin'     = @('JIT admin', 'Manages tenants, policies, templates and channels of the JIT service, and reads its audit trail.')
}
$scopeValue = 'access_as_user'

# The app registration named by -AppId, or by its display name; $null if there is none yet.
function Find-App([string] $AppId, [string] $DisplayName) {
    if ($AppId) { return Get-JitApplication -AppId $AppId }
    $name = $DisplayName.Replace("'", "''")
    $matching = @(Get-GraphCollection -Path "v1.0/applications?`$filter=displayName eq '$name'")
    if ($matching.Count -gt 1) { throw "$($matching.Count) app registrations are named '$DisplayName'; pass its client id to choose one" }
    if ($matching.Count -eq 1) { return $matching[0] }
    return $null
}

# The app registration, created (single tenant) if there is none yet. A new app is used as the POST returned it:
# reading it back at once could miss it while Entra replicates.
function Resolve-App([string] $AppId, [string] $DisplayName) {
    $app = Find-App $AppId $DisplayName
    if ($null -ne $app) {
        Write-Host "Found app registration '$($app.displayName)' ($($app.appId))"
        return $app
    }
    $app = Invoke-Graph -Method POST -Path 'v1.0/applications' -Body @{ displayName = $DisplayName; signInAudience = 'AzureADMyOrg' }
    Write-Host "Created app registration '$DisplayName' ($($app.appId))"
    return $app
}

function Resolve-ServicePrincipal([string] $AppId) {
    $found = @(Get-GraphCollection -Path "v1.0/servicePrincipals?`$filter=appId eq '$AppId'")
    if ($found.Count -eq 1) { return $found[0] }
    return Invoke-GraphRetrying -Method POST -Path 'v1.0/servicePrincipals' -Body @{ appId = $AppId }
}

# A property of a Graph object; nothing at all (not $null) when Graph left it out or it is null, so that
# @(Get-Prop ...) is an empty list rather than a list holding $null.
function Get-Prop($Object, [string] $Name) {
    if ($null -eq $Object) { return }
    $property = $Object.PSObject.Properties[$Name]
    if ($property -and $null -ne $property.Value) { return $property.Value }
}

# Roles and scopes as PATCH takes them back: 'origin' is read-only and must not be sent.
function Remove-Origin([object[]] $Items) {
    return @($Items | Select-Object -Property * -ExcludeProperty origin)
}

# The whole apiApplication, existing values kept, with these changes: PATCH replaces a complex property as sent.
function New-ApiBody($App, [object[]] $PermissionScopes, [object[]] $PreAuthorized) {
    $current = Get-Prop $App 'api'
    $body = @{
        knownClientApplications     = @(Get-Prop $current 'knownClientApplications')
        requestedAccessTokenVersion = 2
        oauth2PermissionScopes      = $PermissionScopes
        preAuthorizedApplications   = $PreAuthorized
    }
    $mapped = Get-Prop $current 'acceptMappedClaims'
    if ($null -ne $mapped) { $body.acceptMappedClaims = $mapped }
    return $body
}

# ---- The API ------------------------------------------------------------------------------------------------------
# Writes to an app created a moment ago go through Invoke-GraphRetrying: Entra may not have replicated it yet.
$api = Resolve-App $ApiAppId $ApiDisplayName
$identifierUri = "api://$($api.appId)"

$existingScopes = @(Get-Prop (Get-Prop $api 'api') 'oauth2PermissionScopes')
$scope = @($existingScopes | Where-Object { $_.value -ceq $scopeValue }) | Select-Object -First 1
$scopeId = if ($scope) { $scope.id } else { [guid]::NewGuid().ToString() }
$permissionScopes = @(Remove-Origin @($existingScopes | Where-Object { $_.value -cne $scopeValue })) + @(@{
        id                      = $scopeId
        value                   = $scopeValue
        type                    = 'User'
        isEnabled               = $true
        adminConsentDisplayName = 'Access the JIT admin API as the signed-in user'
        adminConsentDescription = 'Lets the app call the JIT admin access API as the signed-in user, with that user''s app roles.'
        userConsentDisplayName  = 'Access the JIT admin API as you'
        userConsentDescription  = 'Lets the app call the JIT admin access API as you, with your app roles.'
    })

$existingRoles = @(Get-Prop $api 'appRoles')
$appRoles = @(Remove-Origin @($existingRoles | Where-Object { $_.value -notin $roleDefinitions.Keys }))
foreach ($value in $roleDefinitions.Keys) {
    $role = @($existingRoles | Where-Object { $_.value -ceq $value }) | Select-Object -First 1
    $members = @('User')
    if ($ApplicationRoles -contains $value) { $members += 'Application' }
    $appRoles += @{
        id                 = if ($role) { $role.id } else { [guid]::NewGuid().ToString() }
        value              = $value
        displayName        = $roleDefinitions[$value][0]
        description        = $roleDefinitions[$value][1]
        allowedMemberTypes = $members
        isEnabled          = $true
    }
}

$claims = Get-Prop $api 'optionalClaims'
$accessClaims = @(Get-Prop $claims 'accessToken')
if (-not ($accessClaims | Where-Object { $_.name -eq 'idtyp' })) {
    $accessClaims += @{ name = 'idtyp'; essential = $false; additionalProperties = @() }
}
$identifierUris = @(@(Get-Prop $api 'identifierUris') | Where-Object { $_ -ne $identifierUri }) + $identifierUri
$preAuthorized = @(Get-Prop (Get-Prop $api 'api') 'preAuthorizedApplications')

Invoke-GraphRetrying -Method PATCH -Path "v1.0/applications/$($api.id)" -Body @{
    signInAudience = 'AzureADMyOrg'
    identifierUris = $identifierUris
    appRoles       = $appRoles
    api            = New-ApiBody $api $permissionScopes $preAuthorized
    optionalClaims = @{
        idToken     = @(Get-Prop $claims 'idToken')
        saml2Token  = @(Get-Prop $claims 'saml2Token')
        accessToken = $accessClaims
    }
} | Out-Null
Write-Host "API: $identifierUri/$scopeValue, app roles $($roleDefinitions.Keys -join ', '), v2 access tokens, idtyp claim"

$apiPrincipal = Resolve-ServicePrincipal $api.appId
Invoke-GraphRetrying -Method PATCH -Path "v1.0/servicePrincipals/$($apiPrincipal.id)" -Body @{ appRoleAssignmentRequired = $true } | Out-Null
Write-Host 'API enterprise application: assignment required'

# ---- The portal ---------------------------------------------------------------------------------------------------
$portal = Resolve-App $PortalAppId $PortalDisplayName

$graph = @(Get-GraphCollection -Path "v1.0/servicePrincipals?`$filter=appId eq '$script:GraphAppId'&`$select=id,oauth2PermissionScopes")
if ($graph.Count -ne 1) { throw "Microsoft Graph's service principal was not found in this tenant" }
$graphScopes = foreach ($name in @('openid', 'profile')) {
    $found = @($graph[0].oauth2PermissionScopes | Where-Object { $_.value -ceq $name })
    if ($found.Count -ne 1) { throw "Microsoft Graph has no delegated permission named '$name' in this tenant" }
    @{ id = $found[0].id; type = 'Scope' }
}

$redirects = @(Get-Prop (Get-Prop $portal 'spa') 'redirectUris')
$added = @($PortalRedirectUri | Where-Object { $redirects -notcontains $_ })
Invoke-GraphRetrying -Method PATCH -Path "v1.0/applications/$($portal.id)" -Body @{
    signInAudience         = 'AzureADMyOrg'
    spa                    = @{ redirectUris = @($redirects + $added) }
    requiredResourceAccess = @(
        @{ resourceAppId = $api.appId; resourceAccess = @(@{ id = $scopeId; type = 'Scope' }) }
        @{ resourceAppId = $script:GraphAppId; resourceAccess = @($graphScopes) }
    )
} | Out-Null
if ($added.Count) { Write-Host "Portal: added redirect URIs $($added -join ', ')" }
if (-not ($redirects + $added)) {
    Write-Warning 'The portal has no redirect URI yet: run this again with -PortalRedirectUri (azd env get-value PORTAL_REDIRECT_URI) after azd up'
}

# The portal may ask for access_as_user without anyone consenting to it.
$preAuthorized = @($preAuthorized | Where-Object { $_.appId -ne $portal.appId }) + @(@{
        appId                  = $portal.appId
        delegatedPermissionIds = @($scopeId)
    })
Invoke-Graph -Method PATCH -Path "v1.0/applications/$($api.id)" -Body @{
    api = New-ApiBody $api $permissionScopes $preAuthorized
} | Out-Null
Write-Host "API: the portal ($($portal.appId)) is pre-authorized for $scopeValue"

if ($GrantAdminConsent) {
    $portalPrincipal = Resolve-ServicePrincipal $portal.appId
    $grants = @(Get-GraphCollection -Path "v1.0/servicePrincipals/$($portalPrincipal.id)/oauth2PermissionGrants")
    $grant = @($grants | Where-Object { $_.consentType -eq 'AllPrincipals' -and $_.resourceId -eq $graph[0].id }) | Select-Object -First 1
    if ($grant) {
        $granted = @("$($grant.scope)".Split(' ', [StringSplitOptions]::RemoveEmptyEntries))
        $wanted = @($granted + @('openid', 'profile') | Select-Object -Unique)
        Invoke-Graph -Method PATCH -Path "v1.0/oauth2PermissionGrants/$($grant.id)" -Body @{ scope = ($wanted -join ' ') } | Out-Null
    } else {
        Invoke-GraphRetrying -Method POST -Path 'v1.0/oauth2PermissionGrants' -Body @{
            clientId    = $portalPrincipal.id
            consentType = 'AllPrincipals'
            resourceId  = $graph[0].id
            scope       = 'openid profile'
        } | Out-Null
    }
    Write-Host 'Portal: tenant-wide consent for openid profile'
}

Write-Host ''
Write-Host "API client id:    $($api.appId)"
Write-Host "Portal client id: $($portal.appId)"
Write-Host ''
Write-Host 'Next:'
Write-Host "  azd env set JIT_AUTH_CLIENT_ID $($api.appId)"
Write-Host "  azd env set JIT_AUTH_AUDIENCES $identifierUri"
Write-Host "  azd env set JIT_PORTAL_CLIENT_ID $($portal.appId)"
Write-Host '  azd provision'
Write-Host "  Assign people or groups to the app roles: Entra admin center > Enterprise applications > $($api.displayName) > Users and groups"
Write-Output ([pscustomobject]@{ ApiClientId = $api.appId; PortalClientId = $portal.appId; Audience = $identifierUri })
