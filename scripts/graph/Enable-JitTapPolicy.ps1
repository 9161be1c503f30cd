#Requires -Version 7.0
#Requires -Modules Microsoft.Graph.Authentication
<#
.SYNOPSIS
    Enables the Temporary Access Pass authentication method in one customer tenant, for the accounts JIT creates.

.DESCRIPTION
    A grant that asks for a TAP fails in its survey, before anything is written, while the tenant's TAP method is
    disabled (README, "Provisioning through Microsoft Graph"). This script sets the tenant's
    authentication methods policy for TemporaryAccessPass to enabled, for all users: the accounts the product creates
    belong to no group, so a policy targeting a group would never cover them.

    Lifetime bounds and one-time use are changed only when given. The product keeps every TAP it issues within the
    tenant's bounds, and makes it one-time when the tenant enforces that.

    Sign in as an Authentication Policy Administrator (or Global Administrator) of the customer tenant.

.EXAMPLE
    ./scripts/graph/Enable-JitTapPolicy.ps1 -TenantId fabrikam.onmicrosoft.com

.EXAMPLE
    ./scripts/graph/Enable-JitTapPolicy.ps1 -TenantId fabrikam.onmicrosoft.com -MinimumLifetimeInMinutes 10 -MaximumLifetimeInMinutes 480
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $TenantId,
    [ValidateRange(10, 43200)] [int] $MinimumLifetimeInMinutes,
    [ValidateRange(10, 43200)] [int] $MaximumLifetimeInMinutes,
    [ValidateRange(10, 43200)] [int] $DefaultLifetimeInMinutes,
    [ValidateRange(8, 48)] [int] $DefaultLength,
    # $true: every TAP in the tenant is one-time; $false: the product decides per TAP.
    [Nullable[bool]] $IsUsableOnce
)

. (Join-Path $PSScriptRoot 'JitGraph.Common.ps1')

Connect-JitGraph -TenantId $TenantId -Scopes 'Policy.ReadWrite.AuthenticationMethod' | Out-Null

$path = 'v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass'
function Get-Field($Object, [string] $Name) {
    $property = $Object.PSObject.Properties[$Name]
    if ($property) { return $property.Value }
    return $null
}

function Format-TapPolicy($Policy) {
    $targets = @(Get-Field $Policy 'includeTargets' | Where-Object { $_ } | ForEach-Object { "$($_.targetType):$($_.id)" })
    $minimum = Get-Field $Policy 'minimumLifetimeInMinutes'
    $maximum = Get-Field $Policy 'maximumLifetimeInMinutes'
    $defaultLifetime = Get-Field $Policy 'defaultLifetimeInMinutes'
    $once = Get-Field $Policy 'isUsableOnce'
    return "state $(Get-Field $Policy 'state'); targets $($targets -join ', '); " +
        "lifetime $minimum-$maximum minutes (default $defaultLifetime); one-time only $once"
}

Write-Host "Before: $(Format-TapPolicy (Invoke-Graph -Method GET -Path $path))"

$update = @{
    '@odata.type'  = '#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration'
    state          = 'enabled'
    includeTargets = @(@{ targetType = 'group'; id = 'all_users'; isRegistrationRequired = $false })
}
if ($PSBoundParameters.ContainsKey('MinimumLifetimeInMinutes')) { $update.minimumLifetimeInMinutes = $MinimumLifetimeInMinutes }
if ($PSBoundParameters.ContainsKey('MaximumLifetimeInMinutes')) { $update.maximumLifetimeInMinutes = $MaximumLifetimeInMinutes }
if ($PSBoundParameters.ContainsKey('DefaultLifetimeInMinutes')) { $update.defaultLifetimeInMinutes = $DefaultLifetimeInMinutes }
if ($PSBoundParameters.ContainsKey('DefaultLength')) { $update.defaultLength = $DefaultLength }
if ($PSBoundParameters.ContainsKey('IsUsableOnce')) { $update.isUsableOnce = [bool] $IsUsableOnce }

Invoke-Graph -Method PATCH -Path $path -Body $update | Out-Null

$after = Invoke-Graph -Method GET -Path $path
Write-Host "After:  $(Format-TapPolicy $after)"
if ($after.state -ne 'enabled') { throw 'The Temporary Access Pass method is still not enabled' }
