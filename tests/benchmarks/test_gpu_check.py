"""benchmarks/gpu_check.py imports anywhere and, without CUDA, says so and exits with status 2, writing nothing."""

from __future__ import annotations

import torch


def test_gpu_check_without_cuda(load_benchmark, monkeypatch, capsys, tmp_path):
    gpu_check = load_benchmark("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--quick", "--out", str(out)]) == gpu_check.NO_CUDA_EXIT == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err
    assert not out.exists()
