"""Bounds that keep a run inside the machine: a job's memory, estimated before it samples.

The config schema caps every count that sizes a job at a value no real use
exceeds (workflow/schemas/config.schema.yaml):

- ``chains`` <= 64: PyMC's default is 4, the reference run 8; R-hat and ESS gain
  nothing from more chains than cores, and no workstation has 64 spare ones.
- ``tune``, ``draws`` <= 100000 per chain: the reference run, the longest in the
  workflow, keeps 12500; 100000 is eight times that.
- ``seeds`` <= 10000 per list, ``batch_size`` <= 10000, ``sbc.simulations`` <=
  100000: a campaign of 8 seeds, or SBC's usual 1000 simulations, with room to spare.

Inside those caps a job can still need more memory than the machine has (64
chains of 100000 draws of a model with 1000 groups): :func:`check_job_memory`,
called by the fit and SBC scripts before they sample, estimates what the job's
draws take (draws x chains x stored values x bytes, times the copies made while
the trace is converted and written) and refuses the job, naming the figure and
the settings to change, when the estimate exceeds the memory available now
(``MemAvailable`` of /proc/meminfo, or a cgroup's ``memory.max`` if lower).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_CHAINS = 64
MAX_ITERATIONS = 100_000  # tune or draws per chain
MAX_SEEDS = 10_000

BYTES_PER_VALUE = 8  # float64, as the samplers hold the draws
HYPER_VALUES = 5  # mu_a, sigma_a, mu_b, sigma_b, eps
PER_GROUP_VALUES = 4  # a, b and (non-centered) their offsets
STAT_VALUES = 20  # sample_stats per draw: energy, step size, tree depth, divergences, ... (nutpie's are the most)
COPIES = 3  # the sampler's arrays, the InferenceData built from them, and the copy written to disk
BASE_BYTES = 600 * 2**20  # the Python process with PyMC, nutpie and a compiled model, before any draw

MEMINFO = Path("/proc/meminfo")
CGROUP_MAX = Path("/sys/fs/cgroup/memory.max")


class MemoryLimitError(RuntimeError):
    """A job whose estimated memory exceeds what the machine has; the message names the settings to change."""


@dataclass(frozen=True)
class Estimate:
    """What one job holds at its peak, in bytes, and how the figure was made."""

    chains: int
    iterations: int  # tune + draws per chain (PyMC keeps the warm-up in memory until the end)
    values_per_draw: int
    total: int

    def describe(self) -> str:
        return (
            f"{self.chains} chains x {self.iterations} iterations (tune + draws) x {self.values_per_draw} values x "
            f"{BYTES_PER_VALUE} bytes x {COPIES} copies + {gib(BASE_BYTES)} for the process = {gib(self.total)}"
        )


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def estimate(chains: int, tune: int, draws: int, n_groups: int) -> Estimate:
    """The peak memory of one fit (the fits of a batch run one after another, so also of its job)."""
    values = HYPER_VALUES + PER_GROUP_VALUES * int(n_groups) + STAT_VALUES
    iterations = int(tune) + int(draws)
    total = BASE_BYTES + COPIES * int(chains) * iterations * values * BYTES_PER_VALUE
    return Estimate(chains=int(chains), iterations=iterations, values_per_draw=values, total=total)


def read_meminfo(path: str | Path = MEMINFO) -> dict[str, int]:
    """/proc/meminfo in bytes (``MemTotal``, ``MemAvailable``, ...); {} where there is none."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            info[key.strip()] = int(fields[0]) * (1024 if fields[1:2] == ["kB"] else 1)
    return info


def cgroup_limit(path: str | Path = CGROUP_MAX) -> int | None:
    """The memory limit of this process's cgroup (v2), None when unlimited or unknown."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available(meminfo: Mapping[str, int], cgroup: int | None = None) -> int | None:
    """The memory a new job can use now: MemAvailable (else MemTotal), capped by the cgroup's limit."""
    figure = meminfo.get("MemAvailable", meminfo.get("MemTotal"))
    if cgroup is not None:
        figure = cgroup if figure is None else min(figure, cgroup)
    return figure


def check(need: Estimate, meminfo: Mapping[str, int], cgroup: int | None = None, section: str = "fit") -> None:
    """Refuse (MemoryLimitError) a job whose estimate exceeds the available memory; a pure function."""
    have = available(meminfo, cgroup)
    if have is None or need.total <= have:
        return
    total = meminfo.get("MemTotal")
    machine = f"{gib(have)} available now" + (f" of {gib(total)} in all" if total else "")
    if cgroup is not None and cgroup == have:
        machine += " (this container's limit)"
    raise MemoryLimitError(
        f"this job would need about {gib(need.total)} of memory ({need.describe()}), but the machine has "
        f"{machine}; it was refused before sampling. Lower {section}.chains, {section}.draws or {section}.tune "
        f"(the figure scales with chains x (tune + draws)), or free memory (fewer jobs at once: --cores)."
    )


def check_job_memory(settings: Any, data: Any, section: str = "fit") -> Estimate:
    """The scripts' one call before sampling: estimate ``settings``' job on ``data`` and refuse it if too big.

    ``settings`` has ``chains``, ``tune`` and ``draws`` (a FitSettings); ``data`` has ``n_groups``
    (a ModelData); ``section`` is the config section named in the message (``fit`` or ``sbc``).
    """
    need = estimate(settings.chains, settings.tune, settings.draws, data.n_groups)
    check(need, read_meminfo(), cgroup_limit(), section)
    return need
