"""earthmind-kernels: Triton kernels for earthmind-sdk's fusion hot path.

One module per op (``mma``, ``hca``, ``sap``), each with its ``autograd.Function``; the
plain-torch references they are tested against live in the core
(``earthmind_sdk.model.fusion.functional`` and ``.sap``). The core picks these kernels through
``earthmind_sdk.model.fusion.dispatch`` (``EARTHMIND_KERNELS=auto|triton|reference``).
"""
from .hca import hca
from .mma import mma, mma_into
from .sap import sap_loss

__all__ = ["mma", "mma_into", "hca", "sap_loss"]
__version__ = "0.1.0"
