"""Server-side paging of a SELECT, with page links that keep the other query arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PAGE_SIZES = (25, 50, 100, 250)


def _positive(raw: Any, default: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


@dataclass
class Page:
    """One page of rows and what the template needs to link to the others."""

    items: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.size))

    @property
    def first_index(self) -> int:
        """1-based position of the first row shown."""
        return 0 if not self.total else (self.number - 1) * self.size + 1

    @property
    def last_index(self) -> int:
        """1-based position of the last row shown."""
        return min(self.total, self.number * self.size)

    @classmethod
    def of(
        cls,
        s: Session,
        query: Select,
        args: Mapping[str, Any],
        default_size: int = 25,
        scalars: bool = True,
    ) -> Page:
        """Run `query` for the page named in `args` ('page', 'size'); out-of-range goes last."""
        size = _positive(args.get("size"), default_size)
        if size not in PAGE_SIZES:
            size = default_size
        total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        pages = max(1, -(-total // size))
        number = min(_positive(args.get("page"), 1), pages)
        paged = query.limit(size).offset((number - 1) * size)
        items = list(s.scalars(paged)) if scalars else list(s.execute(paged))
        return cls(items=items, number=number, size=size, total=total)
