"""cac.gov.cn (国家互联网信息办公室): column list pages and article pages.

List page: ``#loadingInfoPage li`` → ``h5 a`` (the full title is the ``title`` attribute; the
link text may be cut), ``.times`` (``YYYY-MM-DD``), protocol-relative hrefs. A list page that
parses to zero items is a ``ParseError`` ("layout changed"), never silence.

Article page: ``h1`` (``h1.title`` first), ``#pubtime`` (``2026年01月09日 18:30``, China time),
body ``#BodyLabel`` (older pages ``.TRS_Editor``). The hidden ``publishdate:`` footer is a
re-publish time and is ignored. Filing announcements yield structured fields
(``extract_filing_facts``); a measure's own effective date and a draft's comment deadline become
``effective_on`` and ``comments_close_on`` (``extract_dates``), as a Federal Register document's
do, so ``/upcoming``, reminders and digests cover Chinese measures too.

Identity: ``cac:c_<id>`` from the article URL (unique, and the same over http, https and
protocol-relative links).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, tzinfo
from typing import ClassVar

from selectolax.lexbor import LexborHTMLParser, LexborNode

from models.errors import FetchError, ParseError
from models.fields import Attachment, CacFields, item_fields
from models.items import MAX_TITLE, ItemData
from models.localtime import load_zone
from models.numbers import chinese_number
from scrapers.base import KnownIds, Parsed, PollResult, SourceState, fetch_parsed, option_int
from scrapers.charset import decode
from scrapers.http import Fetcher
from scrapers.normalize import (
    canonical_url,
    detect_language,
    local_midnight,
    parse_datetime,
    plain_text,
)

CHINA = "Asia/Shanghai"
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
SUMMARY_LIMIT = 500
_ARTICLE_ID = re.compile(r"/c_(\d{10,20})\.htm")
_URL_DATE = re.compile(r"/(\d{4})-(\d{2})/(\d{2})/c_\d+")
_ATTACHMENT = re.compile(r"\.(?:pdf|docx?|xlsx?|zip|rar|wps|ofd)(?:$|\?)|downloadfile\.jsp", re.I)


def _china() -> tzinfo:
    return load_zone(CHINA, strict=True)


def article_id(url: str | None) -> str | None:
    match = _ARTICLE_ID.search(url or "")
    return f"cac:c_{match.group(1)}" if match else None


def _url_date(url: str | None) -> date | None:
    match = _URL_DATE.search(url or "")
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_cac_list(
    body: bytes, headers: Mapping[str, str], *, url: str, source: str = "cac"
) -> Parsed:
    """Parse a column list page (``…/A093702index_1.htm``) into list items."""
    tree = LexborHTMLParser(decode(body, headers, markup="html"))
    rows = tree.css("#loadingInfoPage li")
    items: list[ItemData] = []
    skipped = 0
    for row in rows:
        link = row.css_first("h5 a") or row.css_first("a")
        if link is None:
            skipped += 1
            continue
        title = plain_text(
            link.attributes.get("title"), limit=MAX_TITLE, markup=False
        ) or plain_text(link.text(), limit=MAX_TITLE, markup=False)
        href = canonical_url(link.attributes.get("href"), url)
        if not title or not href:
            skipped += 1
            continue
        times = row.css_first(".times")
        day = _parse_day(times.text() if times is not None else None) or _url_date(href)
        items.append(
            ItemData(
                external_id=article_id(href) or href,
                title=title,
                url=href,
                language=detect_language(title),
                published_at=local_midnight(day, _china()) if day else None,
                date_only=True,
                fields=item_fields(
                    CacFields(publication_date=day.isoformat()) if day else CacFields()
                ),
            )
        )
    if not items:
        msg = "the list page parsed to zero items (layout changed?)"
        raise ParseError(source, msg)
    return Parsed(tuple(items), skipped=skipped)


def parse_cac_article(
    body: bytes, headers: Mapping[str, str], *, url: str, source: str = "cac"
) -> ItemData:
    """Parse an article page into one item with its filing facts and attachments."""
    tree = LexborHTMLParser(decode(body, headers, markup="html"))
    heading = tree.css_first("h1.title") or tree.css_first("h1")
    title = plain_text(heading.text(), limit=MAX_TITLE, markup=False) if heading is not None else ""
    if not title:
        raise ParseError(source, "the article page has no <h1> title (layout changed?)")
    content = (
        tree.css_first("#BodyLabel")
        or tree.css_first(".TRS_Editor")
        or tree.css_first(".article_con")
        or tree.css_first(".main-content")
    )
    if content is None:
        raise ParseError(source, "the article page has no body (#BodyLabel) (layout changed?)")
    for node in content.css("script, style"):
        node.decompose()
    for node in content.css("[style]"):
        if "display:none" in (node.attributes.get("style") or "").replace(" ", "").lower():
            node.decompose()
    text = plain_text(content.html)
    pubtime = tree.css_first("#pubtime")
    published, _ = parse_datetime(
        pubtime.text() if pubtime is not None else None, default_zone=_china()
    )
    canonical = canonical_url(url) or url
    date_only = published is None
    if published is None:
        day = _url_date(canonical)
        published = local_midnight(day, _china()) if day else None
    fields = extract_filing_facts(title, text, published.year if published else None)
    day = published.astimezone(_china()).date() if published is not None else None
    fields.update(extract_dates(title, text, day))
    if day is not None:
        fields["publication_date"] = day.isoformat()
    attachments = _attachments(content, canonical)
    if attachments:
        fields["attachments"] = attachments
    return ItemData(
        external_id=article_id(canonical) or canonical,
        title=title,
        url=canonical,
        summary=plain_text(text, limit=SUMMARY_LIMIT),
        language=detect_language(title, text[:500]),
        published_at=published,
        date_only=date_only,
        fields=item_fields(fields),
    )


def _attachments(content: LexborNode, base: str) -> list[Attachment]:
    found: list[Attachment] = []
    for link in content.css("a[href]"):
        href = canonical_url(link.attributes.get("href"), base)
        label = plain_text(link.text())
        if href and (_ATTACHMENT.search(href) or label.startswith("附件")):
            found.append(Attachment(title=label, url=href))
    return found


_FILED_TOTAL = re.compile(r"(?:累计有|共有|共)(\d+)款生成式人工智能服务(?:在国家网信办)?完成备案")
_REGISTERED_TOTAL = re.compile(
    r"(?:累计有|共有|共|，|,)(\d+)款生成式人工智能应用或功能(?:在地方网信办)?完成登记"
)
_FILED_NEW = re.compile(r"新增(\d+)款(?:生成式人工智能服务在国家网信办完成)?备案")
_REGISTERED_NEW = re.compile(r"新增(\d+)款完成登记")
_AS_OF = re.compile(r"截至(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日")
_BATCH = re.compile(r"第([零一二三四五六七八九十百\d]+)批(深度合成服务算法|境内区块链信息服务)备案")


def extract_filing_facts(title: str, text: str, year: int | None) -> CacFields:
    """Structured facts of a filing announcement (empty for anything else).

    Generative-AI filing announcements (title contains 生成式人工智能服务已备案信息):
    ``filing_kind="genai"``, ``services_filed_total``, ``apps_registered_total``,
    ``services_filed_new``, ``apps_registered_new``, ``as_of`` (ISO date). Algorithm and
    blockchain filing batches: ``filing_kind`` and ``batch`` (an integer).
    """
    facts = CacFields()
    if "生成式人工智能服务已备案信息" in title:
        facts["filing_kind"] = "genai"
        if (count := _count(_FILED_TOTAL, text)) is not None:
            facts["services_filed_total"] = count
        if (count := _count(_REGISTERED_TOTAL, text)) is not None:
            facts["apps_registered_total"] = count
        if (count := _count(_FILED_NEW, text)) is not None:
            facts["services_filed_new"] = count
        if (count := _count(_REGISTERED_NEW, text)) is not None:
            facts["apps_registered_new"] = count
        as_of = _as_of(text, year)
        if as_of:
            facts["as_of"] = as_of
    batch = _BATCH.search(title)
    if batch:
        number = chinese_number(batch.group(1))
        facts["filing_kind"] = (
            "deep_synthesis" if batch.group(2).startswith("深度") else "blockchain"
        )
        if number is not None:
            facts["batch"] = number
    return facts


_DAY = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
# The measure's own provision ("本办法自2025年6月1日起施行", "现予公布，自…起施行"), never a
# date the text gives for another measure it mentions ("《标识办法》…自2025年9月1日起施行"). A
# notice that issues a measure may date itself too ("本通知自印发之日起施行"): the measure's own
# provision wins, then the order's "现予公布", then the notice's.
_OWN_MEASURE = (
    r"本(?P<measure>办法|规定|条例|细则|规则|措施|标准|规范|指引|指南|制度|方案)"
    r"|(?P<order>现予(?:以)?(?:公布|发布|印发)[，,]?)"
    r"|本(?:通知|意见|决定|公告)"
)
_EFFECTIVE = re.compile(
    rf"(?:{_OWN_MEASURE})\s*(?:自|于)\s*(?:{_DAY}|(?:公布|发布|印发)之日)\s*起\s*(?:施行|实施|生效)"
)
_COMMENTS_CLOSE = re.compile(
    rf"(?:意见反馈|反馈意见|征求意见|提出意见)截[止至](?:时间|日期)?(?:为|是|到|：|:)?\s*{_DAY}"
)
_DRAFT = re.compile(r"征求意见|草案")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def extract_dates(title: str, text: str, published: date | None) -> CacFields:
    """A measure's effective date (``effective_on``: its own "本办法自…起施行" or "现予公布，
    自…起施行"; "自公布之日起" is ``published``) and a consultation's comment deadline
    (``comments_close_on``: "意见反馈截止时间为…"), as ISO dates.

    A draft (its title asks for comments, 征求意见稿 or 草案) has no effective date: the date in
    its text is proposed, not law. Dates that do not exist are ignored."""
    text = text.translate(_FULL_WIDTH_DIGITS)
    facts = CacFields()
    if not _DRAFT.search(title):
        ranked: list[tuple[int, int, date]] = []
        for match in _EFFECTIVE.finditer(text):
            rank = 0 if match.group("measure") else 1 if match.group("order") else 2
            ymd = match.groups()[2:5]
            on = _ymd(ymd) if ymd[0] is not None else published
            if on is not None:
                ranked.append((rank, match.start(), on))
        if ranked:
            facts["effective_on"] = min(ranked)[2].isoformat()
    for match in _COMMENTS_CLOSE.finditer(text):
        if (on := _ymd(match.groups())) is not None:
            facts["comments_close_on"] = on.isoformat()
            break
    return facts


def _ymd(groups: Sequence[str | None]) -> date | None:
    year, month, day = groups[:3]
    if year is None or month is None or day is None:
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _count(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


def _as_of(text: str, year: int | None) -> str | None:
    for match in _AS_OF.finditer(text):
        y = int(match.group(1)) if match.group(1) else year
        if y is None:
            continue
        try:
            return date(y, int(match.group(2)), int(match.group(3))).isoformat()
        except ValueError:
            continue
    return None


def _parse_day(text: str | None) -> date | None:
    when, _ = parse_datetime(text, default_zone=_china())
    if when is None:
        return None
    return when.astimezone(_china()).date()


class CacSource:
    """``kind: cac``: the list page by conditional GET; article pages for new items.

    On a source's first poll only the list is stored (those items are history, not news). Later,
    up to ``max_articles`` new items per poll get their article fetched; the rest wait for the
    next poll (they are still on page 1, and the list's validators are not kept, so that poll
    reads the page again rather than getting a 304). An article that cannot be fetched or parsed
    is stored from the list alone, with ``article_error`` in its fields, so it is never lost.
    """

    kind: ClassVar[str] = "cac"

    async def poll(
        self, fetcher: Fetcher, state: SourceState, *, now: datetime, known: KnownIds
    ) -> PollResult:
        fetched = await fetch_parsed(
            fetcher, state, accept=HTML_ACCEPT, parse=parse_cac_list, source=state.name
        )
        if isinstance(fetched, PollResult):
            return fetched
        result, parsed = fetched
        requests = 1
        warnings: list[str] = []
        held = False
        if state.first_poll:
            items = list(parsed.items)
        else:
            already = await known([i.external_id for i in parsed.items])
            fresh = [i for i in parsed.items if i.external_id not in already]
            budget = option_int(state.options, "max_articles", 5)
            items = []
            for listed in fresh[:budget]:
                requests += 1
                items.append(await self._article(fetcher, state, listed))
            if held := len(fresh) > budget:
                warnings.append(f"{len(fresh) - budget} new items left for the next poll")
        return PollResult(
            items=tuple(items),
            # Items left for the next poll must be seen again: no 304 for it.
            etag=None if held else result.etag,
            last_modified=None if held else result.last_modified,
            skipped=parsed.skipped,
            requests=requests,
            warnings=tuple(warnings),
        )

    async def _article(self, fetcher: Fetcher, state: SourceState, listed: ItemData) -> ItemData:
        assert listed.url is not None
        try:
            page = await fetcher.get(listed.url, source=state.name, accept=HTML_ACCEPT)
            article = await fetcher.cpu.run(
                parse_cac_article, page.body, dict(page.headers), url=listed.url, source=state.name
            )
        except (FetchError, ParseError) as exc:
            return replace(listed, fields={**listed.fields, "article_error": exc.message})
        # The list's title attribute is the full title; keep the list's identity and title.
        return replace(article, external_id=listed.external_id, title=listed.title)
