#!/bin/sh
# azd prepackage hook of the api service (azure.yaml): builds what the portal serves from build/portal/ (the
# oidc-client-ts browser build, docs/portal.md) so the deployment package carries it; .funcignore keeps build/ in.
# scripts/build-portal is a bash script that needs Node.js and npm. Without it (a checkout from before the portal)
# the package is made without build/portal/, and the portal's sign-in library is missing: say so, do not stop.
set -eu
cd "$(dirname "$0")/../.."

if [ ! -f scripts/build-portal ]; then
  echo "prepackage: scripts/build-portal not found; packaging without build/portal/ (the portal cannot sign in)" >&2
  exit 0
fi
exec bash scripts/build-portal
