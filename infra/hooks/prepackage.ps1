# azd prepackage hook of the api service on Windows (azure.yaml), doing what prepackage.sh does: runs
# scripts/build-portal (a bash script: Git for Windows' bash or WSL, and Node.js) so the package carries build/portal/.
# Without the script, packaging goes on without build/portal/ and says so.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')

if (-not (Test-Path 'scripts/build-portal')) {
    [Console]::Error.WriteLine('prepackage: scripts/build-portal not found; packaging without build/portal/ (the portal cannot sign in)')
    exit 0
}
if (-not (Get-Command bash -ErrorAction SilentlyContinue)) {
    [Console]::Error.WriteLine('prepackage: scripts/build-portal needs bash (Git for Windows or WSL) and Node.js')
    exit 1
}
# A relative path, so WSL's bash (which sees C:\ as /mnt/c) finds it from the current directory too.
& bash scripts/build-portal
exit $LASTEXITCODE
