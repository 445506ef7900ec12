"""Inline SVG charts of the HTML report: the boot timeline (one bar per boot, its milestones as segments) and
the boot-to-Ready trend over a recipe's builds. Geometry is computed by pure functions, then drawn; every bar,
segment and point carries its recorded value as a data attribute and a <title> tooltip."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.evidence import MILESTONES, Boot
from harness.htmlkit import attrs_html, el, esc, num
from harness.trend import TrendPoint

LABELS = dict(MILESTONES)
MARKERS = ("goalstate_first_s",)  # drawn as a tick on the bar, not as a segment of its own
SEGMENT_COLORS = {"first_serial_s": "#8c959f", "kernel_s": "#bf8700", "imds_first_s": "#0969da",
                  "ready_s": "#1a7f37", "ssh_ready_s": "#8250df", "checks_done_s": "#bc4c00"}
SERIES_COLORS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a", "#bc4c00", "#1b7c83")
SVG_NS = "http://www.w3.org/2000/svg"


def data_name(key: str) -> str:
    """'ready_s' -> 'data-ready-s'."""
    return "data-" + key.replace("_", "-")


def nice_step(max_value: float, ticks: int = 8) -> float:
    """A round axis step (1, 2 or 5 times a power of ten) giving at most about `ticks` steps up to max_value."""
    raw = max(max_value, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= raw)


@dataclass(frozen=True)
class Axis:
    """A linear time axis from 0 to max_s drawn over `width` pixels starting at x0."""

    x0: float
    width: float
    max_s: float
    step_s: float

    @classmethod
    def fit(cls, x0: float, width: float, largest_s: float) -> Axis:
        step = nice_step(largest_s, 10)
        return cls(x0, width, max(step, math.ceil(largest_s / step) * step), step)

    def x(self, seconds: float) -> float:
        return self.x0 + self.width * seconds / self.max_s

    def ticks(self) -> list[float]:
        count = round(self.max_s / self.step_s)
        return [round(i * self.step_s, 6) for i in range(count + 1)]


@dataclass(frozen=True)
class Segment:
    """The part of a boot between two milestones (the first one starts at QEMU's start, 0 s)."""

    milestone: str  # the key it ends at, e.g. ready_s
    start_s: float
    end_s: float
    start_label: str
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    boot: Boot
    y: float
    segments: tuple[Segment, ...]
    markers: tuple[tuple[str, float, float], ...]  # (key, seconds, x)


@dataclass(frozen=True)
class Timeline:
    axis: Axis
    bars: tuple[Bar, ...]
    width: float
    height: float


def known(timings: Mapping[str, float | None]) -> list[tuple[str, float]]:
    """The recorded milestones in time order (ties in the usual order of MILESTONES)."""
    order = {key: i for i, (key, _) in enumerate(MILESTONES)}
    found = [(k, float(v)) for k, v in timings.items() if k in order and v is not None]
    return sorted(found, key=lambda kv: (kv[1], order[kv[0]]))


def segments(timings: Mapping[str, float | None], axis: Axis) -> tuple[Segment, ...]:
    """Consecutive segments from 0 s through each recorded milestone (markers excluded)."""
    out = []
    start, label = 0.0, "QEMU start"
    for key, value in known(timings):
        if key in MARKERS:
            continue
        x0 = axis.x(start)
        out.append(Segment(key, start, value, label, x0, max(0.0, axis.x(value) - x0)))
        start, label = value, LABELS[key]
    return tuple(out)


# LABEL_W fits a configuration name in full ("uefi-trusted-launch-nvme-azure")
TIMELINE_WIDTH, LABEL_W, RIGHT_PAD, TOP, ROW_H, BAR_H, LEGEND_H = 960.0, 230.0, 24.0, 26.0, 30.0, 18.0, 30.0


def timeline_layout(boots: Sequence[Boot], width: float = TIMELINE_WIDTH) -> Timeline:
    """Where every bar and segment goes: one row per boot, all on one time axis so they compare side by side."""
    largest = max((v for b in boots for _, v in known(b.timings_s)), default=1.0)
    axis = Axis.fit(LABEL_W, width - LABEL_W - RIGHT_PAD, max(largest, 1.0))
    bars = []
    for row, boot in enumerate(boots):
        markers = tuple((k, v, axis.x(v)) for k, v in known(boot.timings_s) if k in MARKERS)
        bars.append(Bar(boot, TOP + row * ROW_H, segments(boot.timings_s, axis), markers))
    return Timeline(axis, tuple(bars), width, TOP + len(boots) * ROW_H + LEGEND_H)


def _svg(body: str, width: float, height: float, cls: str, label: str) -> str:
    return el("svg", body, {"xmlns": SVG_NS, "class": cls, "width": f"{width:.0f}", "height": f"{height:.0f}",
                            "viewBox": f"0 0 {width:.0f} {height:.0f}", "role": "img", "aria-label": label})


def _axis_svg(axis: Axis, top: float, bottom: float) -> str:
    parts = []
    for tick in axis.ticks():
        x = axis.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#d0d7de"/>'
                     f'<text x="{x:.1f}" y="{top - 8:.1f}" text-anchor="middle">{tick:g} s</text>')
    return el("g", "".join(parts), {"class": "axis"})


def _segment_svg(boot: str, seg: Segment, y: float) -> str:
    tip = (f"{boot}: {seg.start_label} \u2192 {LABELS[seg.milestone]}: {seg.start_s:.1f} s \u2192 "
           f"{seg.end_s:.1f} s ({seg.end_s - seg.start_s:.1f} s)")
    attrs = {"class": f"segment segment-{seg.milestone}", "data-milestone": seg.milestone,
             "data-start-s": num(seg.start_s), "data-end-s": num(seg.end_s), "x": f"{seg.x:.1f}",
             "y": f"{y:.1f}", "width": f"{seg.width:.1f}", "height": f"{BAR_H:.0f}",
             "fill": SEGMENT_COLORS.get(seg.milestone, "#57606a")}
    return f"<rect{attrs_html(attrs)}><title>{esc(tip)}</title></rect>"


def _bar_svg(bar: Bar) -> str:
    boot = bar.boot
    values = {data_name(k): num(v) for k, v in known(boot.timings_s)}
    tip = f"{boot.name}: " + ", ".join(f"{LABELS[k]} {v:.1f} s" for k, v in known(boot.timings_s))
    body = [f"<title>{esc(tip if values else boot.name + ': no timings recorded')}</title>",
            f'<text x="{LABEL_W - 8:.0f}" y="{bar.y + BAR_H - 5:.1f}" text-anchor="end">{esc(boot.name)}</text>']
    body += [_segment_svg(boot.name, seg, bar.y) for seg in bar.segments]
    for key, value, x in bar.markers:
        body.append(f'<line class="marker" data-milestone="{key}" {data_name(key)}="{num(value)}" x1="{x:.1f}" '
                    f'y1="{bar.y - 3:.1f}" x2="{x:.1f}" y2="{bar.y + BAR_H + 3:.1f}" stroke="#1f2328" '
                    f'stroke-width="2"><title>{esc(f"{boot.name}: {LABELS[key]} {value:.1f} s")}</title></line>')
    return el("g", "".join(body), {"class": "boot-bar", "data-boot": boot.name, **values})


def _legend_svg(y: float) -> str:
    parts, x = [], LABEL_W
    for key, color in SEGMENT_COLORS.items():
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14:.0f}" y="{y + 9:.0f}">to {esc(LABELS[key])}</text>')
        x += 22 + 7 * len(LABELS[key]) + 14
    parts.append(f'<line x1="{x:.0f}" y1="{y - 1:.0f}" x2="{x:.0f}" y2="{y + 11:.0f}" stroke="#1f2328" '
                 f'stroke-width="2"/><text x="{x + 6:.0f}" y="{y + 9:.0f}">{esc(LABELS["goalstate_first_s"])}</text>')
    return el("g", "".join(parts), {"class": "legend"})


def timeline_svg(boots: Sequence[Boot]) -> str:
    """The boot timeline as inline SVG ('' when there is no boot)."""
    if not boots:
        return ""
    layout = timeline_layout(boots)
    bottom = TOP + len(boots) * ROW_H
    body = _axis_svg(layout.axis, TOP, bottom - (ROW_H - BAR_H)) + "".join(_bar_svg(b) for b in layout.bars)
    return _svg(body + _legend_svg(bottom + 8), layout.width, layout.height, "timeline", "boot timeline")


# -- trend ----------------------------------------------------------------------------------------------------

TREND_W, TREND_H, T_LEFT, T_RIGHT, T_TOP, T_BOTTOM = 640.0, 190.0, 48.0, 16.0, 14.0, 44.0


@dataclass(frozen=True)
class Series:
    boot: str
    color: str
    points: tuple[tuple[TrendPoint, float, float], ...]  # (point, x, y)


@dataclass(frozen=True)
class Trend:
    xs: tuple[float, ...]  # one per build, oldest first
    y_max: float
    step: float
    series: tuple[Series, ...]

    def y(self, seconds: float) -> float:
        return T_TOP + (TREND_H - T_TOP - T_BOTTOM) * (1 - seconds / self.y_max)


def trend_layout(build_ids: Sequence[str], points: Sequence[TrendPoint]) -> Trend:
    """Builds spread evenly on x (oldest left), Ready seconds on y from 0; one series per boot name."""
    plot_w = TREND_W - T_LEFT - T_RIGHT
    n = len(build_ids)
    xs = tuple(T_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2) for i in range(n))
    index = {b: i for i, b in enumerate(build_ids)}
    shown = [p for p in points if p.build_id in index]
    largest = max((p.ready_s for p in shown), default=1.0)
    step = nice_step(max(largest, 1.0), 4)
    base = Trend(xs, max(step, math.ceil(largest / step) * step), step, ())
    series = []
    for number, name in enumerate(sorted({p.boot for p in shown})):
        mine = sorted((p for p in shown if p.boot == name), key=lambda p: index[p.build_id])
        placed = tuple((p, xs[index[p.build_id]], base.y(p.ready_s)) for p in mine)
        series.append(Series(name, SERIES_COLORS[number % len(SERIES_COLORS)], placed))
    return Trend(xs, base.y_max, step, tuple(series))


def _trend_axes(layout: Trend, build_ids: Sequence[str], current: str) -> str:
    parts = []
    for i in range(round(layout.y_max / layout.step) + 1):
        value = i * layout.step
        y = layout.y(value)
        parts.append(f'<line x1="{T_LEFT:.0f}" y1="{y:.1f}" x2="{TREND_W - T_RIGHT:.0f}" y2="{y:.1f}" '
                     f'stroke="#d0d7de"/><text x="{T_LEFT - 6:.0f}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{value:g} s</text>')
    base = TREND_H - T_BOTTOM
    for i, build_id in enumerate(build_ids):
        if build_id == current:
            parts.append(f'<line class="current" x1="{layout.xs[i]:.1f}" y1="{T_TOP:.0f}" x2="{layout.xs[i]:.1f}" '
                         f'y2="{base:.0f}" stroke="#57606a" stroke-dasharray="3 3"/>')
    if build_ids:
        parts.append(f'<text x="{layout.xs[0]:.1f}" y="{base + 16:.0f}">{esc(build_ids[0])}</text>')
    if len(build_ids) > 1:
        parts.append(f'<text x="{layout.xs[-1]:.1f}" y="{base + 16:.0f}" text-anchor="end">'
                     f"{esc(build_ids[-1])}</text>")
    return el("g", "".join(parts), {"class": "axis"})


def _series_svg(series: Series) -> str:
    line = " ".join(f"{x:.1f},{y:.1f}" for _, x, y in series.points)
    parts = [f'<polyline fill="none" stroke="{series.color}" stroke-width="2" points="{line}"/>']
    for point, x, y in series.points:
        attrs = {"class": "point", "data-build": point.build_id, "data-boot": point.boot,
                 "data-ready-s": num(point.ready_s), "cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": "3.5",
                 "fill": series.color}
        tip = f"{point.build_id} {point.boot}: Ready at {point.ready_s:.1f} s"
        parts.append(f"<circle{attrs_html(attrs)}><title>{esc(tip)}</title></circle>")
    return el("g", "".join(parts), {"class": "series", "data-boot": series.boot})


def trend_svg(build_ids: Sequence[str], points: Sequence[TrendPoint], current: str) -> str:
    """Boot-to-Ready over the builds as a small line chart ('' when no build recorded a Ready time)."""
    if not points:
        return ""
    layout = trend_layout(build_ids, points)
    legend = "".join(f'<rect x="{T_LEFT + i * 130:.0f}" y="{TREND_H - 16:.0f}" width="10" height="10" '
                     f'fill="{s.color}"/><text x="{T_LEFT + i * 130 + 14:.0f}" y="{TREND_H - 7:.0f}">'
                     f"{esc(s.boot)}</text>" for i, s in enumerate(layout.series))
    body = _trend_axes(layout, build_ids, current) + "".join(_series_svg(s) for s in layout.series)
    return _svg(body + el("g", legend, {"class": "legend"}), TREND_W, TREND_H, "trend", "boot-to-Ready trend")
