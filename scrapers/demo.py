"""``kind: demo``: a source that needs no network, for a first run without a bot token.

It replays real headlines (Federal Register documents on BIS rules and CAC announcements, as
captured in ``tests/data``), one more each poll, dated at the poll: the first poll stores a few
as history (never alerted, like any source's first poll), every later poll brings one new item
through the whole pipeline (classify, plan, the console), so ``make run`` shows what
PolicyWatch does before anything is configured. The cursor counts what was released; after the
last headline it starts over (new ids, so they count as new).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from models.items import ItemData
from scrapers.base import KnownIds, PollResult, SourceState
from scrapers.http import Fetcher

FIRST_POLL = 3  # items the first poll stores as history
KEEP = 10  # items each poll lists (the newest released)
HEADLINES: tuple[tuple[str, str, str], ...] = (
    (
        "Additions to the Entity List",
        "https://www.federalregister.gov/d/2025-19508",
        "BIS adds entities to the Entity List for acting contrary to US national security.",
    ),
    (
        "Revisions to the Entity List",
        "https://www.federalregister.gov/d/2025-19858",
        "Export Administration Regulations: Entity List revisions.",
    ),
    (
        "Measures To Restrict Stockpiling of Polysilicon and Polysilicon Derivatives",
        "https://www.federalregister.gov/d/2026-19537",
        "Semiconductor supply chain: export controls on polysilicon.",
    ),
    (
        "Expansion of End-User Controls To Cover Affiliates of Certain Listed Entities",
        "https://www.federalregister.gov/d/2025-19001",
        "Entity List restrictions extend to affiliates owned 50 percent or more.",
    ),
    (
        "国家互联网信息办公室关于发布生成式人工智能服务已备案信息的公告",
        "https://www.cac.gov.cn/2026-01/09/c_1769688009588554.htm",
        "生成式人工智能服务备案",
    ),
    (
        "Framework for Artificial Intelligence Diffusion",
        "https://www.federalregister.gov/d/2025-00636",
        "Export controls on advanced computing chips and AI model weights.",
    ),
    (
        "One Year Suspension of Expansion of End-User Controls for Affiliates of Certain Listed "
        "Entities",
        "https://www.federalregister.gov/d/2025-19846",
        "The affiliates rule of the Entity List is suspended for one year.",
    ),
    (
        "Establishment of Reporting Requirements for the Development of Advanced Artificial "
        "Intelligence Models and Computing Clusters",
        "https://www.federalregister.gov/d/2024-20529",
        "BIS proposes reporting requirements for frontier AI models and computing clusters.",
    ),
)


def demo_items(released: int, now: datetime) -> tuple[ItemData, ...]:
    """The newest ``KEEP`` of the first ``released`` headlines (cycling), the newest at
    ``now`` and each earlier one a minute before."""
    items = []
    for number in range(max(0, released - KEEP), released):
        title, url, summary = HEADLINES[number % len(HEADLINES)]
        items.append(
            ItemData(
                external_id=f"demo:{number}",
                title=title,
                url=url,
                summary=summary,
                language="zh" if not title.isascii() else "en",
                published_at=now - timedelta(minutes=released - 1 - number),
            )
        )
    return tuple(items)


class DemoSource:
    """``kind: demo``: no fetch; one more real headline each poll (see the module docstring)."""

    kind: ClassVar[str] = "demo"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        before = (state.cursor or {}).get("released")
        released = before + 1 if isinstance(before, int) and before > 0 else FIRST_POLL
        return PollResult(items=demo_items(released, now), cursor={"released": released})
