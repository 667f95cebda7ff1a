"""Client calls in the caller's OpenTelemetry trace (``docs/observability.md`` §4).

When ``opentelemetry-api`` is installed (``pip install 'telemetron[otel]'``), each traced
call is a ``CLIENT`` span ``telemetron.<call>`` in the caller's current context, and the
call carries that span's W3C ``traceparent`` to the node, whose spans for the request
(``telemetron.request``, ``engine.write``, ``storage.commit``) become its children. With
no tracer provider configured the span records nothing and nothing is sent; without the
package, calls are not traced at all.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, TypeVar, cast

from . import _native

try:
    from opentelemetry import propagate, trace
except ImportError:  # the `otel` extra is optional
    trace = None  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])


def traced(name: str) -> Callable[[F], F]:
    """Run the decorated method as span ``telemetron.<name>``, its context sent along."""

    def wrap(f: F) -> F:
        if trace is None:
            return f

        @functools.wraps(f)
        def inner(*args: Any, **kwargs: Any) -> Any:
            tracer = trace.get_tracer("telemetron")
            with tracer.start_as_current_span(f"telemetron.{name}", kind=trace.SpanKind.CLIENT):
                carrier: Dict[str, str] = {}
                propagate.inject(carrier)
                _native.set_traceparent(carrier.get("traceparent"))
                try:
                    return f(*args, **kwargs)
                finally:
                    _native.set_traceparent(None)

        return cast(F, inner)

    return wrap
