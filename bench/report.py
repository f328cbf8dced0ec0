"""What every benchmark hands back, and how docs/benchmarks.md is written from it.

A benchmark's ``measure()`` returns a :class:`Result`: its section of the report (heading, prose,
tables, all numbers from the run), the targets it checks (each a figure measured in the run
against its bound: a ratio against a floor or peer measured in the same run, or an absolute
bound), and the figures to plot.  ``bench/run.py`` collects them, writes each section between
its markers in docs/benchmarks.md with where it was measured (:func:`machine`: date, commit,
cores, memory, KVM or TCG, libvirt and QEMU versions, all read from the system), draws the
plots, and exits non-zero listing the targets missed.

``BENCH_QUICK=1``: every benchmark runs with small counts (a check that it runs, in seconds to
minutes); the report says so in each section.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
# What a run itself writes: not a change of the code it measures.
OUTPUTS = ("docs/benchmarks.md", "docs/benchmarks-*.png")


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def count(full: int, small: int) -> int:
    """``full`` normally, ``small`` under BENCH_QUICK=1."""
    return small if quick() else full


@dataclass
class Target:
    """``value`` must be at most ``limit``.  ``relative``: a ratio against a floor or peer
    measured in the same run (the machine's load weighs on both sides alike)."""

    what: str
    value: float
    limit: float
    unit: str = "x"
    relative: bool = True
    note: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        def fmt(v: float) -> str:
            if self.unit == "x":
                return f"{v:.2f}x"
            return f"{int(v)} {self.unit}" if float(v).is_integer() else f"{v:.1f} {self.unit}"

        verdict = "met" if self.met else "MISSED"
        note = f" ({self.note})" if self.note else ""
        return f"{self.what}: {fmt(self.value)}, target at most {fmt(self.limit)}{note}: {verdict}"


@dataclass
class Figure:
    """A line plot of figures that grow with the work size: ``series`` maps a label to its
    (x, y) points."""

    name: str  # the file is docs/benchmarks-<name>.png
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[tuple[float, float]]]
    logx: bool = False
    logy: bool = False
    bounds: dict[str, float] = field(default_factory=dict)  # horizontal lines: a target's bound


@dataclass
class Result:
    key: str  # the section's markers: <!-- bench:<key>:begin --> ... <!-- bench:<key>:end -->
    heading: str
    lines: list[str]
    targets: list[Target] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    error: str = ""  # set when the benchmark did not finish: its section says so

    @property
    def missed(self) -> list[str]:
        missed = [t.line() for t in self.targets if not t.met]
        if self.error:
            missed.append(f"{self.key}: did not finish: {self.error}")
        return missed


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def libvirt_facts(uri: str | None = None) -> tuple[str, str, str]:
    """libvirt's version, QEMU's, and what runs guests: ``KVM`` when libvirt offers the kvm domain
    type (as vpsctl's driver asks it, hypervisor/libvirt_driver.py), ``TCG`` otherwise."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(uri or os.environ.get("VPSCTL_TEST_LIBVIRT_URI", "qemu:///system"))
    try:
        lib, hyp = conn.getLibVersion(), conn.getVersion()
        try:
            conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
            accel = "KVM"
        except libvirt.libvirtError:
            accel = "TCG"
    finally:
        conn.close()

    def version(v: int) -> str:
        return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"

    return version(lib), version(hyp), accel


@dataclass
class Machine:
    date: str
    commit: str
    dirty: bool
    cores: int
    cpu: str
    memory_gib: float
    kernel: str
    accel: str
    libvirt: str
    qemu: str

    def describe(self) -> str:
        commit = f"commit {self.commit}" + (" (uncommitted changes)" if self.dirty else "")
        guests = ("guests run under KVM" if self.accel == "KVM"
                  else "guests run under TCG emulation (libvirt offers no KVM here)")
        return (f"Measured {self.date} on {commit}; {self.cores} cores ({self.cpu}), "
                f"{self.memory_gib:.0f} GiB, Linux {self.kernel}; {guests}; libvirt {self.libvirt}, "
                f"QEMU {self.qemu}" + ("; quick run (`BENCH_QUICK=1`: small counts)" if quick() else "") + ".")


def machine() -> Machine:
    """Where the figures come from, read from the system at the time of the run."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    excluded = [f":(exclude,glob){path}" for path in OUTPUTS]
    dirty = bool(_git("status", "--porcelain", "--", ".", *excluded))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    lib, qemu, accel = libvirt_facts()
    return Machine(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), commit=commit, dirty=dirty,
                   cores=os.cpu_count() or 1, cpu=cpu, memory_gib=mem_kib / (1 << 20), kernel=os.uname().release,
                   accel=accel, libvirt=lib, qemu=qemu)


def begin(key: str) -> str:
    return f"<!-- bench:{key}:begin -->"


def end(key: str) -> str:
    return f"<!-- bench:{key}:end -->"


def render(result: Result, where: Machine, out: Path) -> str:
    lines = [begin(result.key), f"## {result.heading}", "", where.describe(), ""]
    if result.error:
        lines += [f"**Not measured in this run**: the benchmark stopped with `{result.error}`.", ""]
    else:
        lines += result.lines
        if lines[-1] != "":
            lines.append("")
        for figure in result.figures:
            lines += [f"![{figure.title}]({figure_path(out, figure.name).name})", ""]
    if result.targets:
        lines.append("Targets (checked by `scripts/bench.sh`, which fails when one is missed):")
        lines.append("")
        lines += [f"- {target.line()}" for target in result.targets]
        lines.append("")
    lines.append(end(result.key))
    return "\n".join(lines)


def figure_path(out: Path, name: str) -> Path:
    return out.parent / f"benchmarks-{name}.png"


def write(result: Result, where: Machine, out: Path = DOC) -> None:
    """Replace the section between the result's markers in ``out`` (added at the end if the
    markers are not there yet), and draw its figures beside it."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    section = render(result, where, out)
    start, stop = text.find(begin(result.key)), text.find(end(result.key))
    if start >= 0 and stop > start:
        text = text[:start] + section + text[stop + len(end(result.key)):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if not result.error:
        for figure in result.figures:
            plot(figure, figure_path(out, figure.name))


def plot(figure: Figure, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for label, points in figure.series.items():
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, marker="o", label=label)
    for label, y in figure.bounds.items():
        ax.axhline(y, linestyle="--", color="grey", label=label)
    ax.set_title(figure.title)
    ax.set_xlabel(figure.xlabel)
    ax.set_ylabel(figure.ylabel)
    if figure.logx:
        ax.set_xscale("log")
    # The work sizes measured, and only them, on the x axis.
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xticks(sorted({x for points in figure.series.values() for x, _ in points}))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if figure.logy:
        ax.set_yscale("log")
    ax.set_ylim(bottom=None if figure.logy else 0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    # No timestamp in the file: a PNG changes only when its figures do.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
