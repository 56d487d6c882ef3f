"""The notebooks' one import for views: ``from rvclab.views import widgets``, then ``widgets.X(...)``.

Each function returns something displayable (a widget, an IPython display object or a matplotlib
Figure). They live by kind in :mod:`~rvclab.views.players`, :mod:`~rvclab.views.plots`,
:mod:`~rvclab.views.tables` and :mod:`~rvclab.views.explorer`; this module re-exports them.
"""

from __future__ import annotations

from rvclab.views.explorer import conversion_explorer, f0_method_picker, pitch_shift_view, rmvpe_clip_picker
from rvclab.views.players import ab_player, audio_player, pitch_buzz
from rvclab.views.plots import (
    clip_overview,
    f0_overlay,
    f0_tracks_plot,
    layer_error_plot,
    noise_corr_plot,
    spectrogram_diff,
    waveform_compare,
)
from rvclab.views.profiles import profile_switcher
from rvclab.views.tables import conversion_table, f0_agreement_table, info_table, parity_table, rows_table

__all__ = [
    "ab_player", "audio_player", "clip_overview", "conversion_explorer", "conversion_table",
    "f0_agreement_table", "f0_method_picker", "f0_overlay", "f0_tracks_plot", "info_table",
    "layer_error_plot", "noise_corr_plot", "parity_table", "pitch_buzz", "pitch_shift_view", "profile_switcher",
    "rmvpe_clip_picker", "rows_table", "spectrogram_diff", "waveform_compare",
]
