"""Class-based triggers (``Trigger``) and the ``@trigger`` decorator."""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from agent_triggers._core import delivery_argument
from agent_triggers._delivery import TriggerDelivery

if TYPE_CHECKING:
    from agent_triggers._core import TriggerContext

TriggerFunction = TypeVar("TriggerFunction", bound=Callable[..., Any])


class Trigger(abc.ABC):
    """Base class for class-based triggers.

    Subclasses set ``name`` (defaults to the class name) and ``delivery``
    (defaults to ``TriggerDelivery.WAIT_IDLE``), and implement
    ``async def run(self, ctx)``: the trigger's body, run as a task of the
    runner's event loop until it returns or the runner stops it (it then sees
    ``asyncio.CancelledError``). An exception it raises is logged; the trigger
    is not restarted.

    Instances are also async callables (``trigger(ctx)`` is ``trigger.run(ctx)``),
    so they run under any runner that accepts plain async callables.
    """

    name: ClassVar[str]
    delivery: ClassVar[TriggerDelivery] = TriggerDelivery.WAIT_IDLE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @abc.abstractmethod
    async def run(self, ctx: TriggerContext) -> None:
        """The trigger's body: push messages with ``ctx.send`` and friends."""

    def __call__(self, ctx: TriggerContext) -> Coroutine[Any, Any, None]:
        return self.run(ctx)


@overload
def trigger(func: TriggerFunction, /) -> TriggerFunction: ...


@overload
def trigger(
    *, name: str | None = None, delivery: TriggerDelivery | None = None
) -> Callable[[TriggerFunction], TriggerFunction]: ...


def trigger(
    func: TriggerFunction | None = None,
    /,
    *,
    name: str | None = None,
    delivery: TriggerDelivery | None = None,
) -> TriggerFunction | Callable[[TriggerFunction], TriggerFunction]:
    """Check that ``func`` is an async function taking exactly one parameter.

    Used bare (``@trigger``) or with options (``@trigger(name=..., delivery=...)``).
    Marks the function ``__is_trigger__ = True`` (and sets ``name`` and
    ``delivery`` when given) and returns it unchanged otherwise.

    Raises ``ValueError("Trigger must be an async function")`` or
    ``ValueError("Trigger must accept exactly one parameter")``.
    """
    if delivery is not None:
        # Checked as every native trigger checks it: a member or its value.
        delivery = delivery_argument(delivery)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")

    def mark(fn: TriggerFunction) -> TriggerFunction:
        if not inspect.iscoroutinefunction(fn):
            raise ValueError("Trigger must be an async function")
        if len(inspect.signature(fn).parameters) != 1:
            raise ValueError("Trigger must accept exactly one parameter")
        fn.__is_trigger__ = True  # type: ignore[attr-defined]
        if name is not None:
            fn.name = name  # type: ignore[attr-defined]
        if delivery is not None:
            fn.delivery = delivery  # type: ignore[attr-defined]
        return fn

    return mark if func is None else mark(func)
