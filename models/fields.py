"""The structured facts an item carries, per source kind: the one definition of their names.

Scrapers write these keys, the database stores them as JSON, and the renderer, ``/policy``,
``/upcoming`` and digests read them. Every access is through these TypedDicts, so mypy checks
each key against this file: a fact renamed on one side and not the other fails the type check
(and the render golden files), instead of silently vanishing from alerts.

``ItemFields`` is every kind's facts together (an item has the keys of its own kind only).
``fields_from_json`` reads a stored JSON object back, keeping only known keys whose values have
the declared type, so a hand-edited or legacy row can never crash a renderer.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import (
    Any,
    TypedDict,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)


class FederalRegisterFields(TypedDict, total=False):
    """A Federal Register document (``kind: federal_register``, or ``kind: public_inspection``
    before publication; dates are ISO ``YYYY-MM-DD``)."""

    document_number: str  # "2025-00636"; corrections are "C1-2025-00636"
    document_type: str  # the display name: "Rule", "Proposed Rule", "Notice", ...
    action: str  # "Interim final rule; request for comments."
    citation: str  # "90 FR 4544"
    publication_date: str
    effective_on: str
    comments_close_on: str
    dates: str  # the DATES paragraph, as published
    pdf_url: str  # the legal text on govinfo.gov
    significant: bool
    regulation_id_numbers: list[str]  # RINs, "0694-AJ90"
    docket_ids: list[str]
    cfr_references: list[str]  # "15 CFR 744"
    agencies: list[str]  # agency slugs
    correction_of: str  # the document number a correction corrects
    # An Entity List rule, as its abstract counts it (``models.entitylist``):
    entities_added: int
    entities_removed: int
    entries_revised: int
    destinations: list[str]  # "China (19)", "Turkey (9)"; the count only when given
    # On public inspection (``kind: public_inspection``), before the Federal Register prints it:
    filed_at: str  # when it was filed with the Office of the Federal Register (ISO, with offset)
    publishes_on: str  # the day it is scheduled to be published
    special_filing: bool  # filed for same-day inspection outside the regular schedule
    editorial_note: str  # the Office's note ("This document was withdrawn ...", say)
    raw_text_error: str  # its text could not be read: the item comes from the listing alone


class Attachment(TypedDict):
    """A file linked from an announcement (a CAC filing list, say)."""

    title: str
    url: str


class CacFields(TypedDict, total=False):
    """A cac.gov.cn announcement (``kind: cac``); filing facts only on filing announcements."""

    publication_date: str
    filing_kind: str  # "genai", "deep_synthesis" or "blockchain"
    services_filed_total: int  # genAI services filed with the CAC, cumulative
    services_filed_new: int  # ... of which new in the announced period
    apps_registered_total: int  # genAI apps or functions registered locally, cumulative
    apps_registered_new: int
    as_of: str  # the date the totals are counted to
    batch: int  # the number of an algorithm or blockchain filing batch
    effective_on: str  # the measure's own "自…起施行" day (never a draft's proposed one)
    comments_close_on: str  # a consultation's "意见反馈截止时间"
    attachments: list[Attachment]
    article_error: str  # the article page could not be read; the item comes from the list


class FeedFields(TypedDict, total=False):
    """A feed entry or a list-page entry (``kind: rss`` or ``html_list``)."""

    author: str
    date_zone_assumed: str  # the zone a date without one was read in
    publication_date: str  # YYYY-MM-DD, for entries dated without a time


class CslEntity(TypedDict):
    """One screening-list entry named by a list change."""

    id: str  # the CSL ``_id``
    name: str
    aliases: list[str]
    countries: list[str]  # country names from the addresses
    changed: list[str]  # for a revision: what changed ("aliases", "FR notice", ...)


class CslFields(TypedDict, total=False):
    """A change of the Consolidated Screening List (``kind: csl``): one event, many entries."""

    list_name: str  # "Entity List"
    list_source: str  # "Entity List (EL) - Bureau of Industry and Security"
    change: str  # "added", "removed" or "changed"
    entity_count: int
    countries: list[str]  # most entries first
    citation: str  # the Federal Register rule, "90 FR 14046" (as a FR document's citation)
    start_date: str
    license_policy: str  # when every entry of the event has the same one
    entities: list[CslEntity]  # at most 200; entity_count is the whole number
    fr_document_number: str  # the Federal Register document the citation names, when stored
    fr_title: str


class ItemFields(FederalRegisterFields, CacFields, FeedFields, CslFields, total=False):
    """Every kind's facts; an item carries those of its own kind."""


KindFields = FederalRegisterFields | CacFields | FeedFields | CslFields


def on_inspection(fields: FederalRegisterFields) -> bool:
    """Is this a Federal Register document on public inspection, not printed yet?"""
    return bool(fields.get("filed_at") or fields.get("publishes_on"))


def item_fields(fields: KindFields) -> ItemFields:
    """A kind's facts as an item's. Sound because ``ItemFields`` declares every key of every
    kind with the same type (it inherits them); mypy cannot see that a value of a narrower
    TypedDict holds no undeclared keys, so this is the one place that says it."""
    return cast(ItemFields, fields)


def _conforms(value: Any, expected: Any) -> bool:
    """Does a JSON value have the declared type (str, int, bool, list[...], a TypedDict)?"""
    origin = get_origin(expected)
    if origin is list:
        (inner,) = get_args(expected)
        return isinstance(value, list) and all(_conforms(v, inner) for v in value)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, option) for option in get_args(expected))
    if is_typeddict(expected):
        hints = get_type_hints(expected)
        return isinstance(value, Mapping) and all(
            key in value and _conforms(value[key], hint) for key, hint in hints.items()
        )
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str) and value != ""
    return isinstance(value, expected)


def fields_from_json(raw: object) -> ItemFields:
    """The known, well-typed facts of a stored JSON object (anything else is dropped)."""
    if not isinstance(raw, Mapping):
        return ItemFields()
    hints = get_type_hints(ItemFields)
    kept: dict[str, Any] = {
        key: raw[key] for key, hint in hints.items() if key in raw and _conforms(raw[key], hint)
    }
    return cast(ItemFields, kept)  # checked key by key above
