// The resources of one JIT deployment, in one resource group: a Python 3.11 function app on the Flex Consumption
// plan acting as a user-assigned managed identity; its storage account with shared keys disabled, including a
// write-once (WORM) container for the audit checkpoints; Application Insights with Entra-authenticated ingestion; a
// Key Vault (RBAC) holding the TAP encryption key and the audit key. No secret is stored in an app setting: storage,
// monitoring and Graph use the identity, the keys are Key Vault references. People sign in with Entra ID and the app
// validates their bearer tokens itself (JIT_AUTH_*); machines call /api/svc/... with a function key.

param location string
param tags object
param resourceToken string
param principalId string
param principalType string
param graphClientId string
@secure()
param tapEncryptionKey string
@secure()
param tapEncryptionKeyPrevious string
@secure()
param auditKey string
@secure()
param auditKeyPrevious string
@secure()
param webhookSecret string
param graphBaseUrl string
param authClientId string
param authAudiences string
param authTenantIds string
param authAuthority string
param portalClientId string
param serviceIdentity string
param serviceRoles string
param permanentDelete bool
param appSettingOverrides object
param maximumInstanceCount int
param instanceMemoryMB int
param auditCheckpointRetentionDays int
param auditCheckpointPolicyLocked bool
param enablePurgeProtection bool

var functionAppName = 'func-jit-${resourceToken}'
var deploymentContainerName = 'app-package'
var workQueueName = 'jit-work'
var notifyQueueName = 'jit-notify'
// JIT_TABLE_PREFIX. The checkpoint container is named from it exactly as Settings.checkpoint_container does, so change
// it here, never through appSettingOverrides: the app would create a container of its own, without the WORM policy.
var tablePrefix = 'Jit'
var auditCheckpointContainerName = '${toLower(tablePrefix)}-audit-checkpoints'

// Built-in role definitions (ids are the same in every subscription).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// ---------------------------------------------------------------------------------------------------------------
// Identity: the function app runs as this user-assigned identity for storage, monitoring, Key Vault references and,
// as the federated credential of the multi-tenant app registration, for Graph (scripts/graph).
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-jit-${resourceToken}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------------------------
// Storage: the Functions host (keys, timer locks, deployment package), the work queue, the product's tables and the
// audit checkpoints.
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stjit${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Audit checkpoints (jit/adapters/checkpoints.py): every run of the checkpoint timer creates new blobs here and
// never overwrites or deletes one. A container-level time-based retention (WORM) policy keeps them so: "Azure Storage
// permits the Put Blob operation to create a new blob. Subsequent overwrite operations on an existing blob path in an
// immutable container aren't allowed", and Delete Blob is refused while a blob is within its retention
// (https://learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies, "Scenarios").
// Container-level rather than version-level WORM: it needs no blob versioning on the account (which the host's own
// blobs would pay for) and suits one container whose blobs all keep the same retention
// (https://learn.microsoft.com/azure/storage/blobs/immutable-storage-overview, "Container-level vs version-level WORM").
resource auditCheckpointContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: auditCheckpointContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Deployed unlocked: only an unlocked policy can be created or changed ("Creates or updates an unlocked immutability
// policy", Blob Containers - Create Or Update Immutability Policy). Locking it (compliance, and no one can shorten or
// delete it any more) is a deliberate step by hand, docs/deploy.md; after it, auditCheckpointPolicyLocked=true keeps
// Bicep from writing the policy again.
resource auditCheckpointImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!auditCheckpointPolicyLocked) {
  parent: auditCheckpointContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditCheckpointRetentionDays
    // Checkpoints are block blobs written whole, once: no appends to protected blobs.
    allowProtectedAppendWrites: false
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The code creates its queues and tables on first use too; the queues are made here so the triggers find them at once.
resource workQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: workQueueName
}

resource notifyQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: notifyQueueName
}

// ---------------------------------------------------------------------------------------------------------------
// Monitoring: Application Insights on a Log Analytics workspace, local (key) authentication off.
resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-jit-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-jit-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Key Vault: the TAP encryption key and the audit key (and the previous ones after a rotation). Azure RBAC only.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-jit-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    // The service accepts only true here, or nothing; once on it stays on.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

resource tapKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'jit-tap-encryption-key'
  properties: {
    value: tapEncryptionKey
    contentType: 'AES-256 key, base64'
  }
}

resource tapKeyPreviousSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(tapEncryptionKeyPrevious)) {
  parent: vault
  name: 'jit-tap-encryption-key-previous'
  properties: {
    value: tapEncryptionKeyPrevious
    contentType: 'AES-256 key, base64'
  }
}

// The HMAC key of the audit chains and checkpoints (JIT_AUDIT_KEY): someone who can write to the tables or the
// checkpoint container but cannot read this secret can neither alter an entry nor forge one that verifies.
resource auditKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'jit-audit-key'
  properties: {
    value: auditKey
    contentType: 'HMAC-SHA256 key, base64'
  }
}

resource auditKeyPreviousSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(auditKeyPrevious)) {
  parent: vault
  name: 'jit-audit-key-previous'
  properties: {
    value: auditKeyPrevious
    contentType: 'HMAC-SHA256 key, base64'
  }
}

// Signs outgoing notification webhooks (JIT_WEBHOOK_SECRET), when one is given.
resource webhookSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(webhookSecret)) {
  parent: vault
  name: 'jit-webhook-secret'
  properties: {
    value: webhookSecret
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Role assignments: the app's identity, and the deploying principal (so local runs against Azure work too).
// Blobs: Storage Blob Data Owner, which identity-based host storage (AzureWebJobsStorage) needs ("covers the basic
// needs of Functions host storage", learn.microsoft.com/azure/azure-functions/functions-reference, "Connecting to host
// storage with an identity"). Its data actions include all of Storage Blob Data Contributor's, which is what the
// audit checkpoints need (create and read blobs), so no second blob role is assigned. No data role lets anyone
// overwrite or delete a checkpoint within its retention: that is the immutability policy's job, not RBAC's.
resource identityBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource identityQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource identityTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource identityMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource identitySecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource userBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

resource userQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource userTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource userMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: principalType
  }
}

// The deploying principal reads the TAP and audit keys (local runs against Azure need the same keys, and the
// preprovision hook reads them back) and can rotate them.
resource userSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The function app: Flex Consumption (FC1), Linux, Python 3.11, code package in the blob container above.
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-jit-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  // azd finds the app to deploy the `api` service of azure.yaml to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve as the user-assigned identity (there is no system-assigned one).
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    deploymentContainer
    identityBlobOwner
  ]
}

// Key Vault references to the exact secret versions: a new key (azd provision) changes the setting, which restarts
// the app with the current and previous keys switched together.
var tapKeyReference = '@Microsoft.KeyVault(SecretUri=${tapKeySecret.properties.secretUriWithVersion})'
var auditKeyReference = '@Microsoft.KeyVault(SecretUri=${auditKeySecret.properties.secretUriWithVersion})'

// Entra ID sign-in: only with an API app registration; the tenant defaults to this subscription's and the authority
// to this cloud's sign-in host (environment() ends it with '/', which the code trims).
var authTenants = empty(authTenantIds) ? tenant().tenantId : authTenantIds
var authHost = empty(authAuthority) ? environment().authentication.loginEndpoint : authAuthority

// app-settings:begin
// Every app setting of the function app; tests/unit/test_infra_settings.py reads the names (and literal values)
// between these markers and checks them against what the code reads. Settings this block sets replace any set by
// hand in the portal at the next `azd provision`: change them here or through appSettingOverrides.
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not set: Flex Consumption takes the runtime from
// functionAppConfig.runtime and rejects them.
var baseAppSettings = {
  // Functions host and the code: identity-based storage connection (the queue trigger uses it too; the code reads the
  // blob URI for the audit checkpoints).
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  AzureWebJobsStorage__blobServiceUri: 'https://${storage.name}.blob.${environment().suffixes.storage}'
  AzureWebJobsStorage__queueServiceUri: 'https://${storage.name}.queue.${environment().suffixes.storage}'
  AzureWebJobsStorage__tableServiceUri: 'https://${storage.name}.table.${environment().suffixes.storage}'
  // Application Insights, authenticated as the identity (Monitoring Metrics Publisher).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  // Trigger bindings (%JIT_WORK_QUEUE%, %JIT_NOTIFY_QUEUE%, %JIT_SWEEP_SCHEDULE%, %JIT_DRIFT_SCHEDULE%,
  // %JIT_AUDIT_CHECKPOINT_SCHEDULE%): literal NCRONTAB and names, or no function indexes.
  JIT_WORK_QUEUE: workQueueName
  JIT_NOTIFY_QUEUE: notifyQueueName
  JIT_SWEEP_SCHEDULE: '0 */1 * * * *'
  JIT_DRIFT_SCHEDULE: '0 0 3 * * *'
  // Anchors the heads of the audit chains changed since the last run in a new checkpoint blob: entries cut from a
  // chain after its last checkpoint go unseen, so this is also how stale an undetected cut can be.
  JIT_AUDIT_CHECKPOINT_SCHEDULE: '0 */1 * * * *'
  // Graph: the identity is the federated credential of the multi-tenant app registration (no secret anywhere).
  GRAPH_AUTH: 'workload_identity'
  GRAPH_CLIENT_ID: graphClientId
  GRAPH_MANAGED_IDENTITY_CLIENT_ID: identity.properties.clientId
  GRAPH_BASE_URL: graphBaseUrl
  // TAPs at rest, and the audit trail's HMAC key.
  JIT_TAP_ENCRYPTION_KEY: tapKeyReference
  JIT_AUDIT_KEY: auditKeyReference
  // Machines: a function key (routes under /api/svc/, checked by the Functions host) acts as this service identity
  // with these app roles. People: bearer tokens, see identitySettings below.
  JIT_SERVICE_IDENTITY: serviceIdentity
  JIT_SERVICE_ROLES: serviceRoles
  // The portal's own app registration (single-page application); empty: the portal says sign-in is not configured.
  JIT_PORTAL_CLIENT_ID: portalClientId
  // Product limits and timings: the code's defaults, stated so they can be seen and changed in one place.
  JIT_TABLE_PREFIX: tablePrefix
  JIT_MAX_DURATION: 'PT8H'
  JIT_MIN_DURATION: 'PT5M'
  JIT_START_SKEW: 'PT5M'
  JIT_MAX_START_AHEAD: 'P90D'
  JIT_MAX_BODY_BYTES: '65536'
  JIT_IDEMPOTENCY_TTL: 'P1D'
  JIT_POLL_INTERVAL_SECONDS: '5'
  JIT_PROVISIONING_DEADLINE: 'PT1H'
  JIT_GRAPH_RETRY_BUDGET: 'PT60S'
  JIT_EXPIRY_ALERT_AFTER: 'PT10M'
  JIT_PERMANENT_DELETE: permanentDelete ? 'true' : 'false'
  JIT_DRIFT_LOOKBACK: 'P7D'
  JIT_APPROVAL_TIMEOUT: 'PT4H'
  // Links in notifications point here (override with a front door or API gateway address if there is one).
  JIT_PUBLIC_BASE_URL: 'https://${functionApp.properties.defaultHostName}'
  // Notification channels (JIT_NOTIFY_*, JIT_PSA_*) are off until configured: see appSettingOverrides and
  // docs/deploy.md. Secrets among them belong in the vault, referenced as @Microsoft.KeyVault(...).
}
// People sign in with Entra ID; the app validates their access tokens itself (jit/identity). Set together or not at
// all: the code refuses JIT_AUTH_* settings without a client id, and a client id without tenants.
var identitySettings = empty(authClientId) ? {} : {
  JIT_AUTH_CLIENT_ID: authClientId
  JIT_AUTH_AUDIENCES: authAudiences
  JIT_AUTH_TENANT_IDS: authTenants
  JIT_AUTH_AUTHORITY: authHost
}
// During a key rotation only (docs/deploy.md): the key before, still accepted for decryption.
var previousKeySettings = empty(tapEncryptionKeyPrevious) ? {} : {
  JIT_TAP_ENCRYPTION_KEY_PREVIOUS: '@Microsoft.KeyVault(SecretUri=${tapKeyPreviousSecret.properties.secretUriWithVersion})'
}
// After an audit key rotation: the key before, so what it signed still verifies (docs/deploy.md).
var previousAuditKeySettings = empty(auditKeyPrevious) ? {} : {
  JIT_AUDIT_KEY_PREVIOUS: '@Microsoft.KeyVault(SecretUri=${auditKeyPreviousSecret.properties.secretUriWithVersion})'
}
var webhookSecretSettings = empty(webhookSecret) ? {} : {
  JIT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${webhookSecretSecret.properties.secretUriWithVersion})'
}
var keySettings = union(previousKeySettings, previousAuditKeySettings)
var appSettings = union(baseAppSettings, identitySettings, keySettings, webhookSecretSettings, appSettingOverrides)
// app-settings:end

resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
  // The host starts on this update: its identity must already reach storage, monitoring and the vault.
  dependsOn: [
    identityBlobOwner
    identityQueueContributor
    identityTableContributor
    identityMetricsPublisher
    identitySecretsUser
    workQueue
    notifyQueue
    auditCheckpointContainer
  ]
}

output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output storageAccountName string = storage.name
output auditCheckpointContainerName string = auditCheckpointContainer.name
output keyVaultName string = vault.name
output keyVaultUri string = vault.properties.vaultUri
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output applicationInsightsConnectionString string = appInsights.properties.ConnectionString
