"""pytest glue for the benchmarks; the machinery lives in :mod:`benchcore` (importable by the
benchmark files, which a conftest is not under ``--import-mode=importlib``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from benchcore import (CUDA, DEVICE_NAME, DTYPE, MODES, PROVIDERS, ROWS, copy_gbps, peak_bytes,  # noqa: E402
                       provider_skip, sync, write_summary)


@pytest.fixture(params=PROVIDERS)
def provider(request):
    """Each op's implementations in turn, skipped early where this machine cannot run one."""
    provider_skip(request.param)
    return request.param


@pytest.fixture(params=MODES)
def mode(request):
    """forward, backward, full (forward + backward): see :func:`benchcore.mode_fn`."""
    return request.param


@pytest.fixture
def record(benchmark):
    """record(op, provider, case, floor_bytes, fn, peak_fn=None): time with pytest-benchmark and
    store GB/s, % of copy bandwidth and (optionally) peak memory."""

    def _record(op: str, provider: str, case: str, floor_bytes: int, fn, measure_peak: bool = True,
                mode: str = "forward"):
        def run():
            fn()
            sync()

        benchmark.pedantic(run, rounds=20, warmup_rounds=1, iterations=1)
        t = benchmark.stats.stats.min
        gbps = floor_bytes / t / 1e9
        copy = copy_gbps(floor_bytes)
        row = {"op": op, "mode": mode, "provider": provider, "case": case, "device": DEVICE_NAME, "dtype": str(DTYPE),
               "seconds_min": t, "seconds_median": benchmark.stats.stats.median, "floor_bytes": floor_bytes,
               "achieved_GBps": gbps, "copy_GBps": copy, "pct_of_copy": 100.0 * gbps / copy}
        if measure_peak:
            row["peak_bytes"] = peak_bytes(fn)
        benchmark.extra_info.update(row)
        ROWS.append(row)
        write_summary(final=False)
        print(f"\n{op:5s} {mode:8s} {provider:9s} {case:24s} {t * 1e3:9.3f} ms  {gbps:7.2f} GB/s  floor {floor_bytes / 1e6:8.2f} MB"
              f"  {row['pct_of_copy']:5.1f}% of copy ({copy:.1f} GB/s)"
              + (f"  peak {row['peak_bytes'] / 1e6:.2f} MB" if measure_peak else ""))

    return _record


def pytest_sessionfinish(session, exitstatus):
    if ROWS:
        write_summary(final=True)
