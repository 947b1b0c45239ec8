"""The operator's mapping file: which shop products admit to which zone, under which entry policy.

A small TOML file (JSON also accepted), validated whole with pydantic; every problem is
reported at once with its file line and key (``mapping.toml:12: products[2].zone: …``)::

    # products of pretix event "cup" → gatehouse zones
    admit_on_signature = true      # gates admit a signed ticket not yet synced (default true)
    # subevent = 42                # event series: the date this hub is for
    # valid_from = "2026-12-01T16:00:00Z"   # for signed tickets that carry no validity
    # valid_until = "2026-12-01T23:59:00Z"

    [[products]]
    item = 12          # pretix product id
    variation = 31     # optional: one variation; omit for every variation without a row
    zone = "North"     # zone name (created if missing) or id
    policy = "single"  # entry policy preset or id (default single)

A product with no row is not imported and never admits on its signature (a parking ticket
must not open a turnstile); such positions are counted and reported by every sync.
"""
from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import BadInput


class ProductRow(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    item: int = Field(ge=1)
    variation: int | None = Field(default=None, ge=1)
    zone: int | str
    policy: int | str = "single"

    @field_validator("zone", "policy")
    @classmethod
    def _not_blank(cls, v: int | str) -> int | str:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v.strip() if isinstance(v, str) else v


class MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    admit_on_signature: bool = True
    subevent: int | None = Field(default=None, ge=1)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    products: list[ProductRow] = Field(min_length=1)

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("expected an ISO 8601 time such as 2026-12-01T16:00:00Z") from None
        if isinstance(v, datetime) and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v


_TABLE = re.compile(r"^\s*\[\[\s*products\s*\]\]")


def _table_lines(text: str) -> list[int]:
    """The line of each ``[[products]]`` header, so an error names where to look."""
    return [n for n, line in enumerate(text.splitlines(), start=1) if _TABLE.match(line)]


def parse_mapping(text: str, name: str = "mapping") -> MappingFile:
    """Parse and validate; raises :class:`BadInput` listing every problem with line and key."""
    try:
        data = json.loads(text) if name.endswith(".json") else tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{name}: not valid TOML: {exc}", code="bad_mapping") from None
    except ValueError as exc:
        raise BadInput(f"{name}: not valid JSON: {exc}", code="bad_mapping") from None
    try:
        mapping = MappingFile.model_validate(data)
    except ValidationError as exc:
        lines = _table_lines(text)
        problems = []
        for e in exc.errors():
            loc = e["loc"]
            key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
            where = name
            if len(loc) >= 2 and loc[0] == "products" and isinstance(loc[1], int) and loc[1] < len(lines):
                where = f"{name}:{lines[loc[1]]}"
            problems.append(f"{where}: {key}: {e['msg']}")
        raise BadInput("mapping file refused:\n  " + "\n  ".join(problems), code="bad_mapping",
                       problems=problems) from None
    seen: dict[tuple[int, int | None], int] = {}
    lines = _table_lines(text)
    for i, row in enumerate(mapping.products):
        k = (row.item, row.variation)
        if k in seen:
            where = f"{name}:{lines[i]}" if i < len(lines) else name
            raise BadInput(f"{where}: products[{i}]: item {row.item} variation {row.variation} is mapped twice"
                           f" (first in products[{seen[k]}])", code="bad_mapping")
        seen[k] = i
    if mapping.valid_from and mapping.valid_until and mapping.valid_until <= mapping.valid_from:
        raise BadInput(f"{name}: valid_until must be after valid_from", code="bad_mapping")
    return mapping


def load_mapping(path: Path) -> MappingFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read the mapping file {path}: {exc.strerror or exc}", code="bad_mapping") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text", code="bad_mapping") from None
    return parse_mapping(text, str(path))


def resolve(mapping: MappingFile, zones: dict[str, int], zone_ids: set[int], policies: dict[str, int],
            policy_ids: set[int], name: str = "mapping") -> dict[str, Any]:
    """The mapping with zone and policy names turned into ids (as stored and sent to gates).

    ``zones``: name (case-folded) → id; a zone name not there is an error here (the caller
    creates missing zones first if it wants to)."""
    products = []
    for i, row in enumerate(mapping.products):
        if isinstance(row.zone, int):
            if row.zone not in zone_ids:
                raise BadInput(f"{name}: products[{i}].zone: zone id {row.zone} does not exist", code="bad_mapping")
            zone_id = row.zone
        else:
            found = zones.get(row.zone.casefold())
            if found is None:
                raise BadInput(f"{name}: products[{i}].zone: no zone named {row.zone!r}", code="bad_mapping")
            zone_id = found
        if isinstance(row.policy, int):
            if row.policy not in policy_ids:
                raise BadInput(f"{name}: products[{i}].policy: entry policy id {row.policy} does not exist",
                               code="bad_mapping")
            policy_id = row.policy
        else:
            found = policies.get(row.policy.lower())
            if found is None:
                raise BadInput(f"{name}: products[{i}].policy: unknown entry policy {row.policy!r}; known:"
                               f" {', '.join(sorted(policies))}", code="bad_mapping")
            policy_id = found
        products.append({"item": row.item, "variation": row.variation, "zone_id": zone_id, "policy_id": policy_id})
    return {
        "admit_on_signature": mapping.admit_on_signature,
        "subevent": mapping.subevent,
        "valid_from": mapping.valid_from.timestamp() if mapping.valid_from else None,
        "valid_until": mapping.valid_until.timestamp() if mapping.valid_until else None,
        "products": products,
    }


def product_for(mapping: dict[str, Any], item: int, variation: int | None) -> dict[str, Any] | None:
    """The row that maps ``(item, variation)``: the variation's own row, else the item's catch-all."""
    catch_all = None
    for p in mapping.get("products", []):
        if p["item"] != item:
            continue
        if p["variation"] is not None and p["variation"] == variation:
            return dict(p)
        if p["variation"] is None:
            catch_all = p
    return dict(catch_all) if catch_all is not None else None
