"""One tenant's Microsoft Graph, as JSON over msgraph-sdk's transport (msgraph-core's request adapter with its
authentication and middleware).

Requests are built here as `GraphCall`s: a method, a path relative to the API version, query options and a JSON
body. The same call goes out on its own (URL = base + path) or inside `$batch`, where Graph requires the URL relative
to the version (`/users`, microsoft-graph-docs-contrib concepts/json-batching.md) and refuses absolute ones. Building
batch items from SDK request builders went wrong exactly there: builders share the client's path parameters, so after
the first direct call every later builder produced an absolute URL (msgraph-sdk-python#1015).

Answers are read raw (the native response): no typed model is deserialized on the hot path (the SDK's first typed
answer imports ~1,200 generated model modules), and `$batch` inner bodies, which msgraph-core's batch parser drops,
are plain JSON here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from jit.adapters.graph.errors import classify, from_transport_error
from jit.services.access_backend import DirectoryError

BATCH_LIMIT = 20  # Graph's maximum number of requests in one $batch
_QUERY_SAFE = "$,()'=:@/"  # characters Graph reads literally in OData query options


def segment(value: str) -> str:
    """A path segment from data (an id or a principal name), percent-encoded so it stays one segment."""
    return quote(value, safe="@'")


@dataclass(frozen=True)
class GraphCall:
    method: str
    path: str  # relative to the version, segments already encoded: "/users/{segment(id)}"
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def relative_url(self) -> str:
        if not self.query:
            return self.path
        return f"{self.path}?{urlencode(self.query, quote_via=quote, safe=_QUERY_SAFE)}"


@dataclass(frozen=True)
class GraphAnswer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> DirectoryError:
        error = self.body.get("error", {}) if isinstance(self.body, dict) else {}
        inner = error.get("innerError") or error.get("innererror") or {}
        request_id = str(inner.get("request-id") or _header(self.headers, "request-id") or "")
        return classify(
            self.status,
            str(error.get("code", "")),
            str(error.get("message", "")),
            request_id,
            _header(self.headers, "Retry-After"),
        )

    def json(self) -> Any:
        """The body of a successful answer; the error it carries otherwise."""
        if not self.ok:
            raise self.error()
        return self.body


class GraphGateway:
    """Sends `GraphCall`s for one tenant through msgraph-core's request adapter (auth, middleware, connection pool)."""

    def __init__(self, adapter: Any, base_url: str) -> None:
        self._adapter = adapter
        self._base_url = base_url.rstrip("/")

    async def answer(self, call: GraphCall) -> GraphAnswer:
        """Graph's answer to one call, whatever its status; transport failures raise `Unavailable`."""
        return await self._send(call.method, self._base_url + call.relative_url, call.headers, call.body)

    async def send(self, call: GraphCall) -> Any:
        """The JSON body of a successful answer (None when empty); a DirectoryError otherwise."""
        return (await self.answer(call)).json()

    async def pages(self, call: GraphCall) -> list[Any]:
        """Every item of a collection: the first page, then each @odata.nextLink. The call's headers go with every
        page: an advanced query needs `ConsistencyLevel: eventual` on each one (concepts/paging.md)."""
        items: list[Any] = []
        answer = (await self.answer(call)).json() or {}
        while True:
            items.extend(answer.get("value") or [])
            link = answer.get("@odata.nextLink")
            if not link:
                return items
            answer = await self.next_page(str(link), call.headers)

    async def next_page(self, link: str, headers: dict[str, str]) -> Any:
        """The page an @odata.nextLink points at (only ever on the configured Graph)."""
        if not link.startswith(self._base_url + "/"):
            raise DirectoryError(f"Graph's next page is not on {self._base_url}: refused")
        return (await self._send("GET", link, headers, None)).json() or {}

    async def batch(self, calls: Sequence[GraphCall]) -> list[GraphAnswer]:
        """Send calls through $batch, 20 at a time (Graph's limit), the batches side by side; one answer per call, in
        order. Each batch is fully parallel: Graph runs its requests in any order (a caller that needs an order sends
        a second batch after the first)."""
        import asyncio

        chunks = [range(start, min(start + BATCH_LIMIT, len(calls))) for start in range(0, len(calls), BATCH_LIMIT)]
        answered = await asyncio.gather(*(self._batch_of(calls, chunk) for chunk in chunks))
        return [answer for chunk in answered for answer in chunk]

    async def _batch_of(self, calls: Sequence[GraphCall], chunk: range) -> list[GraphAnswer]:
        requests = []
        for number, index in enumerate(chunk, start=1):
            call = calls[index]
            item: dict[str, Any] = {"id": str(number), "method": call.method, "url": call.relative_url}
            headers = dict(call.headers)
            if call.body is not None:
                item["body"] = call.body
                headers.setdefault("Content-Type", "application/json")
            if headers:
                item["headers"] = headers
            requests.append(item)
        envelope = await self._send("POST", f"{self._base_url}/$batch", {}, {"requests": requests})
        by_id = {str(r.get("id")): r for r in (envelope.json() or {}).get("responses", [])}
        answers = []
        for number in range(1, len(chunk) + 1):
            inner = by_id.get(str(number))
            if inner is None:
                raise DirectoryError(f"$batch answered nothing for request {number}")
            answers.append(GraphAnswer(int(inner.get("status", 0)), dict(inner.get("headers") or {}), inner.get("body")))
        return answers

    async def _send(self, method: str, url: str, headers: dict[str, str], body: Any) -> GraphAnswer:
        from kiota_abstractions.method import Method
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_abstractions.request_information import RequestInformation
        from kiota_http.middleware.options import ResponseHandlerOption

        info = RequestInformation(Method[method])
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in headers.items():
            info.headers.try_add(name, value)
        if body is not None:
            info.set_stream_content(json.dumps(body, separators=(",", ":")).encode(), "application/json")
        # The native response: status, headers and body as Graph sent them, whatever the status.
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        try:
            response = await self._adapter.send_primitive_async(info, "bytes", None)
        except Exception as error:  # transport failures and token refusals become DirectoryErrors
            raise from_transport_error(error) from error
        content = response.content
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = None
        return GraphAnswer(response.status_code, dict(response.headers.items()), parsed)


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted), None)
