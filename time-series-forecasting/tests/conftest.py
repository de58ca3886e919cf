"""Shared by this folder's tests: tiny CPU models run on one torch thread (the root conftest's `one_thread`;
subprocesses get OMP_NUM_THREADS=1 through each test file's ENV)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
