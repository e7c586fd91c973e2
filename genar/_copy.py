"""``copy=`` as in scanpy: work in place and return None, or on a copy that is returned."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from spatialdata import SpatialData

F = TypeVar("F", bound=Callable[..., Any])


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
    """Give ``func(sdata, ...)`` a keyword ``copy=False``; with ``copy=True`` it runs on, and returns, a copy."""

    @functools.wraps(func)
    def wrapper(sdata: SpatialData, *args: Any, copy: bool = False, **kwargs: Any) -> SpatialData | None:
        target = copy_for_writing(sdata) if copy else sdata
        func(target, *args, **kwargs)
        return target if copy else None

    signature = inspect.signature(func)
    parameters = [*signature.parameters.values()]
    parameters.append(inspect.Parameter("copy", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool"))
    wrapper.__signature__ = signature.replace(parameters=parameters, return_annotation="SpatialData | None")
    return wrapper  # type: ignore[return-value]
