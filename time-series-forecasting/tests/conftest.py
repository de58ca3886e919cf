"""Shared by this folder's tests: tiny CPU models run on one torch thread (as fast, and far faster on a busy
shared CPU; subprocesses get OMP_NUM_THREADS=1 through ENV)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
