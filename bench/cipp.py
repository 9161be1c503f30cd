"""The yardstick for request -> Active: the Graph calls a CIPP-style JIT admin makes, one after the other, timed
against the same simulator at the same latency.

Modelled on CIPP's `Set-CIPPUserJITAdmin` and `Invoke-ExecJITAdmin` (KelvinTegelaar/CIPP-API): a new user is
created, gets a TAP, is read back, then each role is activated and assigned and each group membership added, one call
each, then `accountEnabled` is read and the JIT properties are written. CIPP calls the beta endpoints, the simulator
serves v1.0, so each call is replaced by the v1.0 call of the same round trip:

* `POST directoryRoles(roleTemplateId=…)/members/$ref` -> `POST /roleManagement/directory/roleAssignments`;
* the directory role's activation (`POST /directoryRoles`, not modelled by the simulator) -> a read of the role's
  definition, `GET /roleManagement/directory/roleDefinitions/{id}`;
* the schema-extension PATCH of the JIT properties -> `PATCH /users/{id}` of `employeeType`.

Existing user, 1 role: 4 calls (read user, assign, read accountEnabled, write properties). This is the count CIPP's
AddRoles made before it began activating each role first (5 calls today); the shorter one is the stricter yardstick.
New user, 8 roles + 7 groups with a TAP: 1 + 1 + 1 + 8 x 2 + 7 + 1 + 1 = 28 calls. Tokens are fetched beforehand and
not timed (CIPP caches them too).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx

DIRECTORY_OBJECT = "https://graph.microsoft.com/v1.0/directoryObjects/{}"


@dataclass(frozen=True)
class Timed:
    seconds: float
    calls: int
    failures: int


class CippStyle:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
        self.calls = 0
        self.failures = 0
        definitions = self._call("GET", "/roleManagement/directory/roleDefinitions").json()["value"]
        self.role_ids = {d["displayName"]: d["id"] for d in definitions}
        self.calls = self.failures = 0

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, body: object = None) -> httpx.Response:
        answer = self.http.request(method, url, json=body)
        self.calls += 1
        if answer.status_code >= 300:
            self.failures += 1
        return answer

    def _assign(self, user_id: str, role: str) -> None:
        body = {"principalId": user_id, "roleDefinitionId": self.role_ids[role], "directoryScopeId": "/"}
        self._call("POST", "/roleManagement/directory/roleAssignments", body)

    def _finish(self, user_id: str) -> None:
        self._call("GET", f"/users/{user_id}?$select=accountEnabled")
        self._call("PATCH", f"/users/{user_id}", {"employeeType": "JIT admin"})

    def existing_user(self, upn: str, roles: list[str]) -> Timed:
        self.calls = self.failures = 0
        start = time.perf_counter()
        user_id = self._call("GET", f"/users/{upn}").json()["id"]
        for role in roles:
            self._assign(user_id, role)
        self._finish(user_id)
        return Timed(time.perf_counter() - start, self.calls, self.failures)

    def new_user(self, domain: str, roles: list[str], groups: list[str]) -> Timed:
        self.calls = self.failures = 0
        nickname = f"jit{uuid.uuid4().hex[:10]}"
        upn = f"{nickname}@{domain}"
        body = {
            "accountEnabled": True,
            "displayName": "JIT Admin",
            "mailNickname": nickname,
            "userPrincipalName": upn,
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": f"Aa1!{uuid.uuid4().hex}"},
        }
        start = time.perf_counter()
        self._call("POST", "/users", body)
        self._call("POST", f"/users/{upn}/authentication/temporaryAccessPassMethods", {})
        user_id = self._call("GET", f"/users/{upn}").json()["id"]
        for role in roles:
            self._call("GET", f"/roleManagement/directory/roleDefinitions/{self.role_ids[role]}")  # the activation
            self._assign(user_id, role)
        for group in groups:
            self._call("POST", f"/groups/{group}/members/$ref", {"@odata.id": DIRECTORY_OBJECT.format(user_id)})
        self._finish(user_id)
        return Timed(time.perf_counter() - start, self.calls, self.failures)
