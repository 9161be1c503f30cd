"""The schedule index in Azure Table Storage: one entity per wake-up, keyed by its due time.

RowKeys start with the due time in a fixed-width UTC form, so "everything due by now" is one range read over a
single partition whose cost grows with the number of due entries, never with the number of grants stored.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.domain.work import ScheduleItem, Step, WorkItem

PARTITION = "due"


class TableScheduleIndex:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, item: ScheduleItem) -> None:
        self._table.upsert_entity(_to_entity(item), mode=UpdateMode.REPLACE)

    def due(self, now: datetime, limit: int) -> list[ScheduleItem]:
        upper = _time_key(now) + "~"  # '~' sorts after every character a key can hold past the time
        query = self._table.query_entities(
            "PartitionKey eq @p and RowKey lt @upper", parameters={"p": PARTITION, "upper": upper}, results_per_page=limit
        )
        items: list[ScheduleItem] = []
        for entity in query:
            items.append(_from_entity(entity))
            if len(items) >= limit:
                break
        return items

    def remove(self, item: ScheduleItem) -> None:
        # Someone else removing it first meets the goal too.
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(PARTITION, _row_key(item))

    def replace(self, old: ScheduleItem, new: ScheduleItem) -> None:
        # Write the new wake-up before removing the old one, so a crash in between leaves one too many, never none.
        self.put(new)
        if _row_key(old) != _row_key(new):
            self.remove(old)


def _time_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _row_key(item: ScheduleItem) -> str:
    work = item.work
    return f"{_time_key(item.due)}|{work.step.value}|{work.tenant_id}|{work.grant_id}"


def _to_entity(item: ScheduleItem) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": _row_key(item),
        "Due": item.due,
        "Step": item.work.step.value,
        "TenantId": item.work.tenant_id,
        "GrantId": item.work.grant_id,
        "Attempt": item.attempt,
    }


def _from_entity(entity: Any) -> ScheduleItem:
    due = datetime.strptime(entity["RowKey"].split("|", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    work = WorkItem(tenant_id=entity["TenantId"], grant_id=entity["GrantId"], step=Step(entity["Step"]))
    return ScheduleItem(due=due, work=work, attempt=int(entity.get("Attempt", 0)))
