"""The worker's places for videos: a semaphore whose free units a tick takes all at once, each
handed to the video it claims and released exactly once."""

from __future__ import annotations

import asyncio


class Slot:
    """One unit of a semaphore, released at most once."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


async def take_free(semaphore: asyncio.Semaphore) -> list[Slot]:
    """Acquire every unit that is free right now, without waiting."""
    slots = []
    while not semaphore.locked():
        await semaphore.acquire()  # returns at once: the semaphore is not locked
        slots.append(Slot(semaphore))
    return slots
