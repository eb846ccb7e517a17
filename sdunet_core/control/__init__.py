"""Control models beside the UNet: the ControlNet, its presets, names and trace, and the detection of control files.

`controlnet` is the ControlNet in the original layout (`cldm`: the hint encoder, the UNet's encoder built by the
same builder, the zero convs); `presets` the released ones; `keys` their diffusers names; `trace` is
`trace_controlnet()`, the typed trace with every injection into the UNet. `detect` opens a control model's file
(ControlNet in either layout, T2I-Adapter, control-LoRA) through `controlnet_detect`, `adapter_detect` and
`lora_detect`, and reports it in the models of `report`.

Exports `ControlNetConfig`, `ControlNetModel`, `CONTROLNET_PRESETS`, `load_controlnet_preset`,
`trace_controlnet`, `detect_control` and `ControlDetectionReport`.
"""

from .controlnet import ControlNetConfig, ControlNetModel
from .detect import detect_control
from .presets import CONTROLNET_PRESETS, load_controlnet_preset
from .report import ControlDetectionReport
from .trace import trace_controlnet

__all__ = [
    "CONTROLNET_PRESETS",
    "ControlDetectionReport",
    "ControlNetConfig",
    "ControlNetModel",
    "detect_control",
    "load_controlnet_preset",
    "trace_controlnet",
]
