"""The sync wire schema, shared by the device's outbox, the sync client and the server."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from app.domain.hlc import is_stamp
from app.domain.text import text_problem

MAX_FIELDS = 300


def refuse_nul(text: str) -> str:
    """Wire text follows the text rule (`app.domain.text.text_problem`): no NUL (PostgreSQL text
    cannot hold it), no lone surrogate (no UTF-8 reply could carry it back), no control
    characters but newline and tab."""
    reason = text_problem(text)
    if reason is not None:
        raise ValueError(
            "must not contain NUL (\\x00), lone surrogates or control characters other than "
            f"newline and tab ({reason})"
        )
    return text


# A string of the wire: every str of a request body or path goes through this type.
WireText = Annotated[str, AfterValidator(refuse_nul)]


class FieldValue(BaseModel):
    value: Any = None
    hlc: WireText

    @field_validator("hlc")
    @classmethod
    def _stamp(cls, v: str) -> str:
        if not is_stamp(v):
            raise ValueError("hlc must be a clock stamp 'wall:counter:node'")
        return v


class Mutation(BaseModel):
    mutation_id: str
    device_id: WireText = Field(min_length=1, max_length=100)
    entity: WireText = Field(min_length=1, max_length=30)
    entity_id: WireText = Field(min_length=1, max_length=40)
    ward_code: WireText = Field(min_length=1, max_length=10)
    base_version: int = Field(ge=0)
    fields: dict[WireText, FieldValue] = Field(max_length=MAX_FIELDS)

    @field_validator("mutation_id")
    @classmethod
    def _uuid(cls, v: str) -> str:
        return str(uuid.UUID(v))


class PushRequest(BaseModel):
    mutations: list[Mutation] = Field(max_length=2000)


PushStatus = Literal["applied", "conflict", "rejected"]


class PushResult(BaseModel):
    mutation_id: str
    status: PushStatus
    reason: str | None = None
    version: int = 0


class PushResponse(BaseModel):
    results: list[PushResult]


class Change(BaseModel):
    seq: int
    entity: str
    entity_id: str
    ward_code: str
    version: int
    fields: dict[str, FieldValue]


class PullResponse(BaseModel):
    changes: list[Change]
    next_cursor: int
    has_more: bool


def new_mutation_id() -> str:
    return str(uuid.uuid4())
