"""One check for every "must be one of" setting: the error names the key, the value, the allowed ones and
the nearest allowed one. Imports nothing of prunegen (a foundation module)."""

import difflib
from collections.abc import Iterable
from typing import Any


def check_choice(key: str, value: Any, allowed: Iterable[Any], extra: str = "") -> None:
    """Raise `ValueError` unless `value` is one of `allowed`; `extra` says what else is accepted."""
    allowed = tuple(allowed)
    if value in allowed:
        return
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{key} must be one of {allowed}{' ' + extra if extra else ''}, got {value!r}{hint}")
