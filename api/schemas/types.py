"""Bounded types for what people type: dates and instants within the years a contract can be
about (2000-2199: outside, date arithmetic would overflow, and such a date is a typing mistake),
and record ids that fit the database's 64-bit integers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)

# JSON Schema bounds no date: formatMinimum/formatMaximum (a vocabulary of date bounds that
# validators such as ajv read) state them; the API's test generates dates within them.
Day = Annotated[date, Field(ge=EARLIEST, le=LATEST, description="a date between 2000-01-01 and 2199-12-31",
                            json_schema_extra={"formatMinimum": EARLIEST.isoformat(),
                                               "formatMaximum": LATEST.isoformat()})]
FIRST, LAST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, tzinfo=UTC)
Instant = Annotated[AwareDatetime, Field(
    ge=FIRST, le=LAST, description="an instant with its UTC offset, between 2000 and 2199",
    json_schema_extra={"formatMinimum": "2000-01-01T00:00:00Z", "formatMaximum": "2199-12-31T00:00:00Z"})]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]



@dataclass(frozen=True)
class DecimalText:
    """An amount as a decimal string (``"12.50"``): at most ``max_digits - places`` digits before
    the point and ``places`` after, more than zero when ``positive``.  A JSON number is refused (a
    binary float is no exact amount), and the OpenAPI schema holds the very pattern the server
    checks, so the two agree."""

    max_digits: int
    places: int
    positive: bool

    @property
    def pattern(self) -> str:
        whole, places = self.max_digits - self.places, self.places
        fraction = rf"(\.\d{{1,{places}}})?"
        if self.positive:
            return rf"^([1-9]\d{{0,{whole - 1}}}{fraction}|0\.\d{{0,{places - 1}}}[1-9])$"
        return rf"^(0|[1-9]\d{{0,{whole - 1}}}){fraction}$"

    @property
    def text(self) -> str:
        more = ", more than zero" if self.positive else ""
        return f"a decimal string: at most {self.max_digits - self.places} digits before the point and " \
               f"{self.places} after{more}"

    def read(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str) or not re.fullmatch(self.pattern, value):
            raise ValueError(self.text)
        return Decimal(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.read, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        example = "12.50" if self.places == 2 else "123.4567"
        return {"type": "string", "pattern": self.pattern, "description": self.text, "examples": [example]}


Price = Annotated[Decimal, DecimalText(12, 2, positive=True)]  # euros, before tax (R8.3-ht)
Fee = Annotated[Decimal, DecimalText(12, 2, positive=False)]
SmallPrice = Annotated[Decimal, DecimalText(10, 2, positive=True)]
Index = Annotated[Decimal, DecimalText(12, 4, positive=True)]  # a Syntec index value
