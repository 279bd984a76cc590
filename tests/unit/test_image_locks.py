"""The import bookkeeping's per-image write lock: one writer per image, images independent, re-entrant."""

from __future__ import annotations

import threading

from glancelite.tasks.bookkeeping import ImageLocks


def test_one_image_is_serialised_and_reentrant():
    locks = ImageLocks()
    inside, most = [0], [0]
    guard = threading.Lock()

    def write():
        for _ in range(200):
            with locks("a"), locks("a"):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
    assert locks._locks == {}  # nothing kept once nobody holds or waits


def test_other_images_do_not_wait():
    locks = ImageLocks()
    entered = threading.Event()

    def other():
        with locks("b"):
            entered.set()

    with locks("a"):
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(5)  # "a" is still held here
        thread.join()
