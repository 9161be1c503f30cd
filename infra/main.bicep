// JIT admin access: everything `azd up` provisions. Subscription scope: one resource group, then resources.bicep.
// Parameters come from main.parameters.json, which maps them to azd environment values (docs/deploy.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names the resource group and seeds a unique suffix for the resources.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person (or pipeline) running azd. It gets data access to storage and the vault, so local runs against Azure work. Empty: no such access.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal principalId is.')
param principalType string = 'User'

@minLength(36)
@maxLength(36)
@description('Application (client) id of the multi-tenant app registration the function app acts as in Graph (scripts/graph/New-JitAppRegistration.ps1).')
param graphClientId string

@secure()
@minLength(44)
@maxLength(44)
@description('JIT_TAP_ENCRYPTION_KEY: 32 random bytes, base64. The preprovision hook (infra/hooks) puts one in the azd environment.')
param tapEncryptionKey string

@secure()
@description('JIT_TAP_ENCRYPTION_KEY_PREVIOUS: the key before a rotation, still accepted for decryption. Empty: none.')
param tapEncryptionKeyPrevious string = ''

@secure()
@minLength(44)
@maxLength(44)
@description('JIT_AUDIT_KEY: 32 random bytes, base64: the HMAC key that signs the audit chains and checkpoints. The preprovision hook (infra/hooks) puts one in the azd environment; it is stored in Key Vault.')
param auditKey string

@secure()
@description('JIT_AUDIT_KEY_PREVIOUS: the audit key before a rotation; entries and checkpoints it signed still verify. Empty: none.')
param auditKeyPrevious string = ''

@secure()
@description('JIT_WEBHOOK_SECRET: signs outgoing notification webhooks; stored in Key Vault. Empty: not set.')
param webhookSecret string = ''

@description('JIT_AUTH_CLIENT_ID: application (client) id of the API app registration whose access tokens people (and flows) present (docs/deploy.md, "Sign-in"). Empty: bearer tokens are not accepted, only function keys at /api/svc/.')
param authClientId string = ''

@description('JIT_AUTH_AUDIENCES: further accepted token audiences, comma-separated: the API\'s Application ID URI (api://...), which v1 tokens carry and from which the portal derives its scope. Used only with authClientId.')
param authAudiences string = ''

@description('JIT_AUTH_TENANT_IDS: tenant ids (GUIDs, comma-separated) whose people and applications may present tokens. Empty: the tenant of this subscription. Used only with authClientId.')
param authTenantIds string = ''

@description('JIT_AUTH_AUTHORITY: the Entra sign-in host, scheme and host only. Empty: this cloud\'s (https://login.microsoftonline.com in the public cloud). Used only with authClientId.')
param authAuthority string = ''

@description('JIT_PORTAL_CLIENT_ID: application (client) id of the portal\'s single-page-application registration (redirect URI https://<function app host>/portal/). Empty: the portal says sign-in is not configured.')
param portalClientId string = ''

@description('JIT_SERVICE_IDENTITY: the name a caller with a function key (routes under /api/svc/) acts as in grants and the audit trail.')
param serviceIdentity string = 'function-key'

@description('Graph v1.0 endpoint (national clouds: https://graph.microsoft.us/v1.0, https://microsoftgraph.chinacloudapi.cn/v1.0).')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('JIT_SERVICE_ROLES: app roles of callers that use a function key, comma-separated, from Jit.Requester, Jit.Approver, Jit.Admin. A key never approves and never receives a credential, whatever its roles.')
param serviceRoles string = 'Jit.Requester'

@description('JIT_PERMANENT_DELETE: DeleteUser also removes the account from deleted items (needs User.DeleteRestore.All in each tenant).')
param permanentDelete bool = false

@description('Extra or changed app settings, merged last (for example {"JIT_MAX_DURATION": "PT4H"} or notification settings).')
param appSettingOverrides object = {}

@minValue(40)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of one instance.')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(146000)
@description('Days each audit checkpoint blob stays immutable (write once, read many) after it is written: the time-based retention policy of the checkpoint container (1 to 146000 days).')
param auditCheckpointRetentionDays int = 365

@description('Set to true once the checkpoint container\'s immutability policy has been locked (docs/deploy.md, "Audit checkpoints"): Bicep then leaves the policy alone, since only an unlocked policy can be written.')
param auditCheckpointPolicyLocked bool = false

@description('Turn on Key Vault purge protection. It cannot be turned off again, and keeps the vault name taken for the retention period after azd down.')
param enablePurgeProtection bool = false

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'jit-resources'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    graphClientId: graphClientId
    tapEncryptionKey: tapEncryptionKey
    tapEncryptionKeyPrevious: tapEncryptionKeyPrevious
    auditKey: auditKey
    auditKeyPrevious: auditKeyPrevious
    webhookSecret: webhookSecret
    graphBaseUrl: graphBaseUrl
    authClientId: authClientId
    authAudiences: authAudiences
    authTenantIds: authTenantIds
    authAuthority: authAuthority
    portalClientId: portalClientId
    serviceIdentity: serviceIdentity
    serviceRoles: serviceRoles
    permanentDelete: permanentDelete
    appSettingOverrides: appSettingOverrides
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    auditCheckpointRetentionDays: auditCheckpointRetentionDays
    auditCheckpointPolicyLocked: auditCheckpointPolicyLocked
    enablePurgeProtection: enablePurgeProtection
  }
}

// Outputs become azd environment values (`azd env get-values`): the names azd and scripts/graph expect.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = resources.outputs.functionAppName
output AZURE_FUNCTION_NAME string = resources.outputs.functionAppName
output SERVICE_API_NAME string = resources.outputs.functionAppName
output SERVICE_API_URI string = 'https://${resources.outputs.functionAppHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = resources.outputs.storageAccountName
output AZURE_AUDIT_CHECKPOINT_CONTAINER string = resources.outputs.auditCheckpointContainerName
// The redirect URI of the portal's app registration (scripts/graph/New-JitSignInRegistrations.ps1).
output PORTAL_REDIRECT_URI string = 'https://${resources.outputs.functionAppHostName}/portal/'
output AZURE_KEY_VAULT_NAME string = resources.outputs.keyVaultName
output AZURE_KEY_VAULT_URI string = resources.outputs.keyVaultUri
output GRAPH_CLIENT_ID string = graphClientId
output GRAPH_MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.identityClientId
output GRAPH_MANAGED_IDENTITY_PRINCIPAL_ID string = resources.outputs.identityPrincipalId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = resources.outputs.applicationInsightsConnectionString
