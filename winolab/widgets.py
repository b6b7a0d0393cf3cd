"""Wiring of the book's widgets: ``explore.compute_*`` + ``viz.plot_*`` -> ipywidgets.

Each widget is declared once in :data:`WIDGETS` (its ``compute_*`` function, its ``plot_*``
function and its controls). :func:`make_widget` turns a declaration into an
:class:`ipywidgets.interactive` and returns it (it never displays it): each change of a control
recomputes, the widget's ``.result`` is the dataclass, and its output area shows the figure as a
PNG with the numbers below it. The static book shows the same declaration without a kernel:
``scripts/precompute_widgets.py`` renders every state with :func:`render`, and the placeholder
the widget offers as ``text/html`` is filled in by a small script in the page.
Needs ``pip install winolab[widgets]``.

The ``compute_*`` functions and their dataclasses live in :mod:`winolab.explore`; they are
importable from here too.

>>> WIDGETS["conv_cost"].controls[0].values
(1, 2, 3, 4, 5, 6, 7, 8)
"""

from __future__ import annotations

import html
import importlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from winolab import explore
from winolab.explore import (  # noqa: F401 - the compute layer's old home, kept importable
    Accuracy,
    ConvCost,
    Counts,
    Derivation,
    FillIn,
    PruningView,
    ReluDensity,
    SpatialWinograd,
    Tiling,
    compute_accuracy,
    compute_conv_cost,
    compute_counts,
    compute_derivation,
    compute_fill_in,
    compute_pruning,
    compute_relu_density,
    compute_spatial_winograd,
    compute_tiling,
)

__all__ = [
    "Control",
    "WidgetSpec",
    "make_accuracy_widget",
    "make_conv_cost_widget",
    "make_counts_widget",
    "make_derivation_widget",
    "make_fill_in_widget",
    "make_pruning_widget",
    "make_relu_widget",
    "make_spatial_winograd_widget",
    "make_tiling_widget",
    "make_widget",
    "numbers",
    "render",
    "static_placeholder",
]


@dataclass(frozen=True)
class Control:
    """One control: the ``compute_*`` argument it sets, its label, its values, its default.

    ``fmt`` is a slider's readout format (``"d"``, ``".2f"``); a control without one is a menu.
    ``static`` lists the values the static book precomputes when it cannot afford all of them
    (``None``: all).
    """

    name: str
    description: str
    values: tuple
    value: object
    fmt: str = ""
    static: tuple | None = None

    def __post_init__(self):
        for v in (self.value, *(self.static or ())):
            if v not in self.values:
                raise ValueError(f"control {self.name!r}: {v!r} is not one of {self.values}")

    @property
    def kind(self) -> str:
        """``"slider"`` or ``"menu"``."""
        return "slider" if self.fmt else "menu"

    def label(self, v) -> str:
        """The text the control shows for the value ``v`` (its readout)."""
        return format(v, self.fmt) if self.fmt else str(v)

    def ipywidget(self):
        """A fresh ipywidgets control (IntSlider, FloatSlider or Dropdown)."""
        ipw = _ipywidgets()
        if not self.fmt:
            return ipw.Dropdown(
                options=list(self.values), value=self.value, description=self.description
            )
        lo, hi = self.values[0], self.values[-1]
        if self.fmt == "d":
            return ipw.IntSlider(
                value=self.value,
                min=lo,
                max=hi,
                description=self.description,
                continuous_update=False,
            )
        return ipw.FloatSlider(
            value=self.value,
            min=lo,
            max=hi,
            step=round(self.values[1] - lo, 10),
            description=self.description,
            continuous_update=False,
            readout_format=self.fmt,
        )


def _ints(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(range(lo, hi + 1))


def _steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, 10) for i in range(n + 1))


@dataclass(frozen=True)
class WidgetSpec:
    """A widget: ``compute(**settings)`` drawn by ``viz.<plot>``, under its controls."""

    name: str
    compute: Callable
    plot: str
    controls: tuple[Control, ...]

    def settings(self, static: bool = True) -> Iterator[dict]:
        """Every combination of the controls' values (the static subset by default)."""
        axes = [(c.static or c.values) if static else c.values for c in self.controls]
        for combo in itertools.product(*axes):
            yield dict(zip((c.name for c in self.controls), combo, strict=True))

    def key(self, settings: dict) -> str:
        """The state's name, as the static page spells it: ``"m=2,r=3"``."""
        return ",".join(f"{c.name}={c.label(settings[c.name])}" for c in self.controls)


def _density(value: float, static: tuple) -> Control:
    return Control("density", "density", _steps(0.05, 1.0, 0.05), value, ".2f", static)


# The static subsets keep the build within its time (scripts/precompute_widgets.py prints the
# count and the seconds); Jupyter and the live console take every value.
WIDGETS: dict[str, WidgetSpec] = {
    s.name: s
    for s in (
        WidgetSpec(
            "conv_cost",
            explore.compute_conv_cost,
            "plot_conv_cost",
            (
                Control("m", "m", _ints(1, 8), 2, "d"),
                Control("r", "r", _ints(1, 7), 3, "d"),
            ),
        ),
        WidgetSpec(
            "derivation",
            explore.compute_derivation,
            "plot_matrices",
            (
                Control("m", "m", _ints(1, 6), 2, "d"),
                Control("r", "r", _ints(2, 5), 3, "d"),
                Control("points", "points", ("lavin", "barabasz"), "lavin"),
            ),
        ),
        WidgetSpec(
            "tiling",
            explore.compute_tiling,
            "plot_tiling",
            (
                Control("H", "H", _ints(3, 16), 8, "d", (5, 8, 13)),
                Control("W", "W", _ints(3, 16), 8, "d", (5, 8, 13)),
                Control("m", "m", _ints(1, 6), 2, "d", (2, 3, 4)),
                Control("r", "r", _ints(1, 5), 3, "d", (2, 3, 5)),
                Control("padding", "padding", _ints(0, 2), 1, "d"),
            ),
        ),
        WidgetSpec(
            "accuracy",
            explore.compute_accuracy,
            "plot_accuracy",
            (
                Control("m", "m", _ints(2, 8), 4, "d"),
                Control("points", "points", ("lavin", "barabasz", "onednn"), "lavin"),
            ),
        ),
        WidgetSpec(
            "fill_in",
            explore.compute_fill_in,
            "plot_fill_in",
            (
                _density(0.1, (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)),
                Control("m", "m", _ints(1, 6), 2, "d", (2, 3, 4, 6)),
                Control("seed", "seed", _ints(0, 9), 0, "d", (0, 1, 2)),
            ),
        ),
        WidgetSpec(
            "pruning",
            explore.compute_pruning,
            "plot_pruning",
            (
                _density(0.5, _steps(0.1, 1.0, 0.1)),
                Control("m", "m", _ints(1, 6), 2, "d", (2, 3, 4, 6)),
                Control("method", "method", ("magnitude", "importance"), "magnitude"),
            ),
        ),
        WidgetSpec(
            "relu",
            explore.compute_relu_density,
            "plot_relu_density",
            (
                Control("m", "m", _ints(1, 6), 2, "d"),
                Control("shift", "shift", _steps(-1.5, 1.5, 0.25), 0.0, ".2f"),
            ),
        ),
        WidgetSpec(
            "spatial_winograd",
            explore.compute_spatial_winograd,
            "plot_importance",
            (
                Control(
                    "target_density",
                    "target",
                    _steps(0.05, 1.0, 0.05),
                    0.5,
                    ".2f",
                    _steps(0.1, 1.0, 0.1),
                ),
                Control("m", "m", _ints(2, 6), 4, "d"),
            ),
        ),
        WidgetSpec(
            "counts",
            explore.compute_counts,
            "plot_counts",
            (
                Control(
                    "network",
                    "network",
                    ("convpool-cnn-c", "resnet18-liu", "vgg-nagadomi"),
                    "vgg-nagadomi",
                ),
                Control(
                    "weight_density",
                    "weights",
                    _steps(0.05, 1.0, 0.05),
                    0.4,
                    ".2f",
                    (0.2, 0.4, 1.0),
                ),
                Control(
                    "activation_density",
                    "activations",
                    _steps(0.05, 1.0, 0.001),
                    0.411,
                    ".3f",
                    (0.2, 0.411, 1.0),
                ),
                Control("m", "m", _ints(2, 6), 2, "d", (2, 4, 6)),
            ),
        ),
    )
}


def numbers(result) -> list[tuple[str, object, str]]:
    """The scalar fields of a ``compute_*`` result: ``(name, value, text)``, in field order.

    These are the numbers a widget prints under its figure (arrays are left to the figure).

    >>> numbers(explore.compute_conv_cost(m=4))[-1]
    ('ratio', 4.0, '4')
    """
    out = []
    for f in fields(result):
        v = getattr(result, f.name)
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bool | str):
            out.append((f.name, v, str(v)))
        elif isinstance(v, int):
            out.append((f.name, v, f"{v:,}"))
        elif isinstance(v, float):
            out.append((f.name, v, f"{v:.4g}"))
        elif isinstance(v, tuple) and all(isinstance(e, int) for e in v):
            out.append((f.name, list(v), str(v)))
    return out


def render(spec: WidgetSpec, settings: dict, dpi: int = 100):
    """One state of a widget: ``(result, png, numbers)``, or ``(None, message, [])``.

    ``message`` says why the maths does not allow that combination (the ``ValueError`` of
    ``compute_*``). The Jupyter widget and the static book both show what this returns.
    """
    from winolab import viz

    try:
        result = spec.compute(**settings)
    except ValueError as exc:
        return None, f"not possible: {exc}", []
    fig = getattr(viz, spec.plot)(result)
    return result, viz.png(fig, dpi=dpi), numbers(result)


def static_placeholder(name: str) -> str:
    """The ``text/html`` a widget offers: a ``div`` the static book's script fills in.

    >>> static_placeholder("tiling")[:50]
    '<div class="winolab-explore" data-widget="tiling">'
    """
    if name not in WIDGETS:
        raise ValueError(f"no widget {name!r}; one of {sorted(WIDGETS)}")
    return (
        f'<div class="winolab-explore" data-widget="{html.escape(name)}">'
        '<p class="winolab-explore-fallback">An interactive widget: run this notebook with a '
        "Python kernel, or open it in the winolab book, where its precomputed states switch "
        "in the page.</p></div>"
    )


def _ipywidgets():
    try:
        return importlib.import_module("ipywidgets")
    except ImportError as exc:
        raise ImportError("winolab.widgets needs ipywidgets: pip install winolab[widgets]") from exc


@lru_cache(maxsize=1)
def _interactive_class():
    ipywidgets = _ipywidgets()

    class Interactive(ipywidgets.interactive):
        """``interactive`` that also offers the static book's placeholder as ``text/html``.

        Jupyter front ends show the live widget (its ``widget-view`` output); the book's HTML
        builder prefers ``text/html`` (``nb_mime_priority_overrides`` in ``_config.yml``).
        """

        winolab_name = ""

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            if data is not None and self.winolab_name:
                data["text/html"] = static_placeholder(self.winolab_name)
            return data

    return Interactive


def make_widget(name: str):
    """The ipywidget of ``WIDGETS[name]``: its controls over ``compute_*`` and ``viz.plot_*``."""
    if name not in WIDGETS:
        raise ValueError(f"no widget {name!r}; one of {sorted(WIDGETS)}")
    spec = WIDGETS[name]
    from IPython.display import Image, display

    def update(**values):
        result, png, nums = render(spec, values)
        if result is None:  # a combination the maths does not allow: say so, no result
            display(png)
            return None
        display(Image(data=png))
        print("  ".join(f"{field} = {text}" for field, _, text in nums))
        return result

    w = _interactive_class()(update, **{c.name: c.ipywidget() for c in spec.controls})
    w.winolab_name = name
    return w


def make_conv_cost_widget():
    """Sliders for m and r over ``explore.compute_conv_cost`` (32x32, 64 -> 64)."""
    return make_widget("conv_cost")


def make_derivation_widget():
    """Sliders for m and r and a point-set menu over ``explore.compute_derivation``."""
    return make_widget("derivation")


def make_tiling_widget():
    """Sliders for the image size, m, r and the padding over ``explore.compute_tiling``."""
    return make_widget("tiling")


def make_accuracy_widget():
    """A slider for m and a point-set menu over ``explore.compute_accuracy``."""
    return make_widget("accuracy")


def make_fill_in_widget():
    """Sliders for the weight density, m and the seed over ``explore.compute_fill_in``."""
    return make_widget("fill_in")


def make_pruning_widget():
    """Sliders for the density and m and a method menu over ``explore.compute_pruning``."""
    return make_widget("pruning")


def make_relu_widget():
    """Sliders for m and the pre-activation mean over ``explore.compute_relu_density``."""
    return make_widget("relu")


def make_spatial_winograd_widget():
    """Sliders for the target density and m over ``explore.compute_spatial_winograd``."""
    return make_widget("spatial_winograd")


def make_counts_widget():
    """A network menu and sliders for densities and m over ``explore.compute_counts``."""
    return make_widget("counts")
