"""`Directory` over msgraph-sdk: one tenant's users, roles, groups and Temporary Access Passes."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from io import BytesIO
from typing import Any, TypeVar

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.temporary_access_pass_authentication_method import TemporaryAccessPassAuthenticationMethod
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from jit.adapters.graph.errors import from_batch_item, from_exception
from jit.services.directory import (
    AddMember,
    AssignRole,
    CreateTap,
    DirectoryError,
    DirectoryUser,
    NewUser,
    NotFoundInDirectory,
    RoleAssignment,
    RoleDefinition,
    Survey,
    TapPolicy,
    TemporaryAccessPass,
    TenantInfo,
    Write,
    WriteResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
BATCH_LIMIT = 20  # Graph's maximum number of requests in one $batch
USER_FIELDS = ["id", "userPrincipalName", "employeeType", "accountEnabled"]


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except Exception as error:  # every SDK failure becomes a DirectoryError (or is re-raised as it is)
        raise from_exception(error) from error


async def _all_pages(first: Any, builder: Any) -> list[Any]:
    """Every item of a collection: the first page, then each @odata.nextLink."""
    items: list[Any] = []
    page = first
    while page is not None:
        items.extend(page.value or [])
        link = page.odata_next_link
        if not link:
            break
        page = await _call(functools.partial(builder.with_url(link).get))
    return items


class GraphDirectory:
    """One tenant's directory through msgraph-sdk. Every call maps Graph's errors to `DirectoryError`s."""

    def __init__(self, client: GraphServiceClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def tenant(self) -> TenantInfo:
        [(status, headers, body)] = await self._batch([self._client.organization.to_get_request_information()])
        if status >= 300:
            raise from_batch_item(status, headers, body)
        return _tenant_info(body)

    async def survey(self, group_ids: list[str], *, tap_policy: bool) -> Survey:
        requests = [self._client.organization.to_get_request_information()]
        if tap_policy:
            requests.append(self._tap_policy_builder().to_get_request_information())
        requests += [self._client.groups.by_group_id(g).to_get_request_information() for g in group_ids]
        answers = await self._batch(requests)
        for status, headers, body in answers[: len(requests) - len(group_ids)]:
            if status >= 300:
                raise from_batch_item(status, headers, body)
        missing = []
        for group_id, (status, headers, body) in zip(group_ids, answers[len(answers) - len(group_ids) :], strict=True):
            if status == 404:
                missing.append(group_id)
            elif status >= 300:
                raise from_batch_item(status, headers, body)
        policy = _tap_policy(answers[1][2]) if tap_policy else None
        return Survey(tenant=_tenant_info(answers[0][2]), missing_groups=missing, tap_policy=policy)

    async def role_definitions(self) -> list[RoleDefinition]:
        builder = self._client.role_management.directory.role_definitions
        from msgraph.generated.role_management.directory.role_definitions.role_definitions_request_builder import (
            RoleDefinitionsRequestBuilder,
        )

        query = RoleDefinitionsRequestBuilder.RoleDefinitionsRequestBuilderGetQueryParameters(
            select=["id", "templateId", "displayName"]
        )
        first = await _call(functools.partial(builder.get, RequestConfiguration(query_parameters=query)))
        return [
            RoleDefinition(role.id, role.template_id or role.id, role.display_name)
            for role in await _all_pages(first, builder)
            if role.id and role.display_name
        ]

    def _tap_policy_builder(self) -> Any:
        configurations = self._client.policies.authentication_methods_policy.authentication_method_configurations
        return configurations.by_authentication_method_configuration_id("TemporaryAccessPass")

    async def tap_policy(self) -> TapPolicy:
        [(status, headers, body)] = await self._batch([self._tap_policy_builder().to_get_request_information()])
        if status >= 300:
            raise from_batch_item(status, headers, body)
        return _tap_policy(body)

    async def find_user(self, id_or_upn: str) -> DirectoryUser | None:
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS)
        try:
            user = await _call(lambda: self._client.users.by_user_id(id_or_upn).get(RequestConfiguration(query_parameters=query)))
        except NotFoundInDirectory:
            return None
        return _user(user)

    async def create_user(self, user: NewUser) -> DirectoryUser:
        body = User(
            account_enabled=True,
            display_name=user.display_name,
            mail_nickname=user.mail_nickname,
            user_principal_name=user.user_principal_name,
            employee_type=user.employee_type,
            password_profile=PasswordProfile(force_change_password_next_sign_in=False, password=user.password),
        )
        created = await _call(lambda: self._client.users.post(body))
        return _user(created)

    async def delete_user(self, user_id: str) -> None:
        await _call(self._client.users.by_user_id(user_id).delete)

    async def purge_deleted_user(self, user_id: str) -> None:
        await _call(self._client.directory.deleted_items.by_directory_object_id(user_id).delete)

    async def deleted_user_exists(self, user_id: str) -> bool:
        try:
            await _call(self._client.directory.deleted_items.by_directory_object_id(user_id).get)
        except NotFoundInDirectory:
            return False
        return True

    async def disable_user(self, user_id: str, new_password: str) -> None:
        patch = User(
            account_enabled=False,
            password_profile=PasswordProfile(force_change_password_next_sign_in=False, password=new_password),
        )
        await _call(functools.partial(self._client.users.by_user_id(user_id).patch, patch))

    async def revoke_sign_in_sessions(self, user_id: str) -> None:
        await _call(self._client.users.by_user_id(user_id).revoke_sign_in_sessions.post)

    async def users_marked(self, prefix: str) -> list[DirectoryUser]:
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        # employeeType filters are advanced queries: Graph wants ConsistencyLevel: eventual and $count=true.
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"startswith(employeeType,'{_odata_literal(prefix)}')", select=USER_FIELDS, count=True, top=999
        )
        configuration = RequestConfiguration(query_parameters=query)
        configuration.headers.add("ConsistencyLevel", "eventual")
        first = await _call(functools.partial(self._client.users.get, configuration))
        return [_user(u) for u in await _all_pages(first, self._client.users)]

    async def role_assignments(self, principal_id: str) -> list[RoleAssignment]:
        from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
            RoleAssignmentsRequestBuilder,
        )

        query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{_odata_literal(principal_id)}'"
        )
        builder = self._client.role_management.directory.role_assignments
        first = await _call(functools.partial(builder.get, RequestConfiguration(query_parameters=query)))
        return [
            RoleAssignment(item.id, item.role_definition_id, item.principal_id or principal_id, item.directory_scope_id or "/")
            for item in await _all_pages(first, builder)
            if item.id and item.role_definition_id
        ]

    async def remove_role_assignment(self, assignment_id: str) -> None:
        builder = self._client.role_management.directory.role_assignments
        await _call(lambda: builder.by_unified_role_assignment_id(assignment_id).delete())

    async def remove_member(self, group_id: str, member_id: str) -> None:
        member = self._client.groups.by_group_id(group_id).members.by_directory_object_id(member_id)
        await _call(member.ref.delete)

    async def group_ids_of(self, principal_id: str) -> set[str]:
        builder = self._client.users.by_user_id(principal_id).member_of
        first = await _call(builder.get)
        return {
            item.id for item in await _all_pages(first, builder) if item.id and (item.odata_type or "").lower().endswith("group")
        }

    async def temporary_access_passes(self, user_id: str) -> list[TemporaryAccessPass]:
        builder = self._client.users.by_user_id(user_id).authentication.temporary_access_pass_methods
        answer = await _call(lambda: builder.get())
        return [_tap(m) for m in (answer.value or []) if m.id] if answer else []

    async def delete_temporary_access_pass(self, user_id: str, tap_id: str) -> None:
        builder = self._client.users.by_user_id(user_id).authentication.temporary_access_pass_methods
        await _call(lambda: builder.by_temporary_access_pass_authentication_method_id(tap_id).delete())

    async def apply(self, writes: list[Write]) -> list[WriteResult]:
        answers = await self._batch([self._request_for(w) for w in writes])
        results = []
        for write, (status, headers, body) in zip(writes, answers, strict=True):
            if status >= 300:
                results.append(WriteResult(write, error=from_batch_item(status, headers, body)))
            elif isinstance(write, AssignRole):
                results.append(
                    WriteResult(
                        write,
                        assignment=RoleAssignment(
                            str(body.get("id", "")),
                            write.role_definition_id,
                            write.principal_id,
                            str(body.get("directoryScopeId", "/")),
                        ),
                    )
                )
            elif isinstance(write, CreateTap):
                results.append(
                    WriteResult(
                        write,
                        tap=TemporaryAccessPass(
                            id=str(body.get("id", "")),
                            value=body.get("temporaryAccessPass"),
                            expires_at=_expiry(body),
                        ),
                    )
                )
            else:
                results.append(WriteResult(write))
        return results

    def _request_for(self, write: Write) -> RequestInformation:
        if isinstance(write, AssignRole):
            assignment = UnifiedRoleAssignment(
                principal_id=write.principal_id, role_definition_id=write.role_definition_id, directory_scope_id="/"
            )
            return self._client.role_management.directory.role_assignments.to_post_request_information(assignment)
        if isinstance(write, AddMember):
            reference = ReferenceCreate(odata_id=f"{self._base_url}/directoryObjects/{write.member_id}")
            return self._client.groups.by_group_id(write.group_id).members.ref.to_post_request_information(reference)
        method = TemporaryAccessPassAuthenticationMethod(
            lifetime_in_minutes=write.lifetime_in_minutes, is_usable_once=write.is_usable_once
        )
        builder = self._client.users.by_user_id(write.user_id).authentication.temporary_access_pass_methods
        return builder.to_post_request_information(method)

    async def _send_raw(self, info: RequestInformation) -> bytes:
        # Any error status is parsed as Graph's error body ("XXX" matches every 4xx/5xx).
        raw: Any = await self._client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
        return bytes(raw or b"")

    async def _batch(self, requests: Sequence[RequestInformation]) -> list[tuple[int, dict[str, str], Any]]:
        """Send requests through $batch, 20 at a time; (status, headers, parsed body) per request, in order.

        The SDK builds the batch; its answer is read raw, because msgraph-core's BatchResponseContent drops inner
        JSON bodies (it only decodes base64 ones), and the ids and TAP values are in those bodies.
        """
        answers: list[tuple[int, dict[str, str], Any]] = []
        for start in range(0, len(requests), BATCH_LIMIT):
            chunk = requests[start : start + BATCH_LIMIT]
            content = BatchRequestContent()
            for number, request in enumerate(chunk, start=1):
                content.add_request(str(number), BatchRequestItem(request_information=request, id=str(number)))
            info = RequestInformation(Method.POST, "{+baseurl}/$batch")
            info.set_content_from_parsable(self._client.request_adapter, "application/json", content)
            info.headers.try_add("Accept", "application/json")
            raw = await _call(functools.partial(self._send_raw, info))
            by_id = {str(r.get("id")): r for r in _json(raw).get("responses", [])}
            for number in range(1, len(chunk) + 1):
                answer = by_id.get(str(number))
                if answer is None:
                    raise DirectoryError(f"$batch answered nothing for request {number}")
                answers.append((int(answer.get("status", 0)), dict(answer.get("headers") or {}), answer.get("body") or {}))
        return answers

    async def send_mail(self, mailbox: str, to: list[str], subject: str, html: str) -> None:
        """Send an HTML message from `mailbox` (Mail.Send), not kept in its Sent Items: POST /users/{mailbox}/sendMail."""
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        message = Message(
            subject=subject,
            body=ItemBody(content_type=BodyType.Html, content=html),
            to_recipients=[Recipient(email_address=EmailAddress(address=address)) for address in to],
        )
        body = SendMailPostRequestBody(message=message, save_to_sent_items=False)
        await _call(functools.partial(self._client.users.by_user_id(mailbox).send_mail.post, body))


def _tenant_info(body: dict[str, Any]) -> TenantInfo:
    organizations = body.get("value") or []
    organization = organizations[0] if organizations else {}
    if not organization.get("id"):
        raise NotFoundInDirectory("the tenant has no organization object")
    domains = organization.get("verifiedDomains") or []
    return TenantInfo(
        tenant_id=str(organization["id"]),
        display_name=str(organization.get("displayName") or ""),
        initial_domain=next((str(d["name"]) for d in domains if d.get("isInitial") and d.get("name")), ""),
        verified_domains=tuple(str(d["name"]) for d in domains if d.get("name")),
    )


def _tap_policy(body: dict[str, Any]) -> TapPolicy:
    return TapPolicy(
        enabled=str(body.get("state", "")).lower() == "enabled",
        minimum_lifetime_minutes=int(body.get("minimumLifetimeInMinutes") or 60),
        maximum_lifetime_minutes=int(body.get("maximumLifetimeInMinutes") or 480),
        default_lifetime_minutes=int(body.get("defaultLifetimeInMinutes") or 60),
        usable_once_enforced=bool(body.get("isUsableOnce", False)),
    )


def _json(body: BytesIO | bytes | None) -> Any:
    if body is None:
        return {}
    raw = body.getvalue() if isinstance(body, BytesIO) else body
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _user(user: Any) -> DirectoryUser:
    return DirectoryUser(
        id=str(user.id),
        user_principal_name=str(user.user_principal_name or ""),
        employee_type=user.employee_type,
        account_enabled=user.account_enabled,
    )


def _tap(method: Any) -> TemporaryAccessPass:
    expires: datetime | None = None
    if method.start_date_time and method.lifetime_in_minutes:
        from datetime import timedelta

        expires = method.start_date_time + timedelta(minutes=method.lifetime_in_minutes)
    return TemporaryAccessPass(id=str(method.id), value=None, expires_at=expires)


def _expiry(body: dict[str, Any]) -> datetime | None:
    from datetime import timedelta

    start, lifetime = body.get("startDateTime"), body.get("lifetimeInMinutes")
    if not start or not lifetime:
        return None
    return datetime.fromisoformat(str(start).replace("Z", "+00:00")) + timedelta(minutes=int(lifetime))


def _odata_literal(value: str) -> str:
    """A value inside an OData string literal: a quote is written twice, so it cannot end the literal."""
    return value.replace("'", "''")
