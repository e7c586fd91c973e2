"""``copy=`` as in scanpy: work in place and return None, or on a copy that is returned."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from spatialdata import SpatialData

F = TypeVar("F", bound=Callable[..., Any])

#: The ``copy`` entry that :func:`supports_copy` adds to the Parameters section of every docstring it wraps.
COPY_DOC = """    copy
        Return a modified copy of ``sdata`` instead of changing it in place (as scanpy's ``copy=``). The copy
        holds copies of the tables and shapes; image elements are shared, since genar never writes to them.
"""


def copy_for_writing(sdata: SpatialData) -> SpatialData:
    """A SpatialData whose tables and shapes are copies of ``sdata``'s and whose images, labels, points are shared."""
    from spatialdata import SpatialData

    return SpatialData(
        images=dict(sdata.images),
        labels=dict(sdata.labels),
        points=dict(sdata.points),
        shapes={key: shapes.copy() for key, shapes in sdata.shapes.items()},
        tables={key: table.copy() for key, table in sdata.tables.items()},
        attrs=dict(sdata.attrs),
    )


def supports_copy(func: F) -> F:
    """Give ``func(sdata, ...)`` a keyword ``copy=False``; with ``copy=True`` it runs on, and returns, a copy.

    A function that returns a result (e.g. :func:`genar.tl.evaluate`'s table) still returns it in place; with
    ``copy=True`` it returns the copy, whose tables hold what it wrote.
    """

    @functools.wraps(func)
    def wrapper(sdata: SpatialData, *args: Any, copy: bool = False, **kwargs: Any) -> Any:
        target = copy_for_writing(sdata) if copy else sdata
        result = func(target, *args, **kwargs)
        return target if copy else result

    signature = inspect.signature(func)
    parameters = [*signature.parameters.values()]
    copy_parameter = inspect.Parameter("copy", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool")
    variadic = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]  # **kwargs stays last
    parameters = [p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD] + [copy_parameter, *variadic]
    returned = signature.return_annotation
    returns = "SpatialData | None" if returned in ("None", None) else f"{returned} | SpatialData"
    wrapper.__signature__ = signature.replace(parameters=parameters, return_annotation=returns)
    wrapper.__doc__ = _with_copy_parameter(func.__doc__ or "")
    return wrapper  # type: ignore[return-value]


def _with_copy_parameter(doc: str) -> str:
    """``doc`` with :data:`COPY_DOC` as the last entry of its Parameters section (just before Returns).

    The indentation of the Returns header is kept, so this works whether or not Python dedented the docstring.
    """
    match = re.search(r"\n([ \t]*)Returns\n[ \t]*-------", doc)
    if match is None:
        return doc
    indent = match.group(1)
    entry = "".join(indent + line[4:] + "\n" for line in COPY_DOC.splitlines())
    return doc[: match.start()].rstrip("\n") + "\n" + entry + doc[match.start() :]
