"""Path parameters shared by the routes: the same NUL check as every string of a body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from app.domain.models import SHA256_HEX
from app.domain.mutations import refuse_nul

# An id in a path (device, audit): it reaches SQL, so no NUL characters.
IdPath = Annotated[str, Path(min_length=1, max_length=40), AfterValidator(refuse_nul)]
ShaPath = Annotated[str, Path(pattern=SHA256_HEX.pattern)]
