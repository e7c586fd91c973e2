from __future__ import annotations

import pytest


@pytest.fixture
def reader_threads_made(monkeypatch) -> list[int]:
    """The ``n_threads`` of every patch reader made while the test runs, in order."""
    from genar.pp import _patch_reader

    made = []
    init = _patch_reader.PatchReader.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self.n_threads)

    monkeypatch.setattr(_patch_reader.PatchReader, "__init__", recording_init)
    return made
