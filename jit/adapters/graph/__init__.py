"""The Microsoft Graph gateway: credentials, one msgraph-sdk client per tenant, and the `Directory` it implements."""
